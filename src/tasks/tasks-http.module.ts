import { Module } from '@nestjs/common';
import { TasksController } from './tasks.controller';
import { EventsHttpModule } from '../events/events-http.module';
import { TaskWaiter } from './task-waiter';
import { TasksModule } from './tasks.module';

/** The HTTP face of tasks, mounted by the API role only. */
@Module({
  imports: [TasksModule, EventsHttpModule],
  controllers: [TasksController],
  providers: [TaskWaiter],
  exports: [TaskWaiter],
})
export class TasksHttpModule {}
