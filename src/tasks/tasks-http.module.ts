import { Module } from '@nestjs/common';
import { ProvidersController } from '../providers/providers.controller';
import { TasksController } from './tasks.controller';
import { EventsHttpModule } from '../events/events-http.module';
import { TaskWaiter } from './task-waiter';
import { TasksModule } from './tasks.module';

/** The HTTP face of tasks and providers, mounted by the API role only. */
@Module({
  imports: [TasksModule, EventsHttpModule],
  controllers: [TasksController, ProvidersController],
  providers: [TaskWaiter],
  exports: [TaskWaiter],
})
export class TasksHttpModule {}
