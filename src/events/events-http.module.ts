import { Module } from '@nestjs/common';
import { providerByBackend } from '../common/backend-provider';
import { TasksModule } from '../tasks/tasks.module';
import { PostgresTaskEventSubscriptions } from './postgres-task-events';
import { RedisTaskEventSubscriptions } from './redis-task-events';
import { TaskEventStreamService } from './task-event-stream.service';
import { TaskEventFeedController } from './task-event-feed.controller';
import { TaskEventSubscriptions } from './task-event-subscriptions';
import { TaskEventsController } from './task-events.controller';

/** Live event streams, mounted by the API role only (workers publish events but hold no streams). */
@Module({
  imports: [TasksModule],
  controllers: [TaskEventsController, TaskEventFeedController],
  providers: [
    providerByBackend(TaskEventSubscriptions, {
      redis: RedisTaskEventSubscriptions,
      postgres: PostgresTaskEventSubscriptions,
    }),
    TaskEventStreamService,
  ],
  exports: [TaskEventSubscriptions],
})
export class EventsHttpModule {}
