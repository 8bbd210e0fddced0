import { Module } from '@nestjs/common';
import { ProviderCallbacksController } from '../providers/provider-callbacks.controller';
import { ProvidersController } from '../providers/providers.controller';
import { TasksController } from './tasks.controller';
import { EventsHttpModule } from '../events/events-http.module';
import { TaskWaiter } from './task-waiter';
import { TasksModule } from './tasks.module';

/** The HTTP face of tasks and providers, mounted by the API role only. */
@Module({
  imports: [TasksModule, EventsHttpModule],
  controllers: [TasksController, ProvidersController, ProviderCallbacksController],
  providers: [TaskWaiter],
  exports: [TaskWaiter],
})
export class TasksHttpModule {}
