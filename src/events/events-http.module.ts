import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { TaskEventStreamService } from './task-event-stream.service';
import { TaskEventSubscriptions } from './task-event-subscriptions';
import { TaskEventsController } from './task-events.controller';

/** Live event streams, mounted by the API role only (workers publish events but hold no streams). */
@Module({
  imports: [TasksModule],
  controllers: [TaskEventsController],
  providers: [TaskEventSubscriptions, TaskEventStreamService],
  exports: [TaskEventSubscriptions],
})
export class EventsHttpModule {}
