import { Global, Module } from '@nestjs/common';
import { providerByBackend } from '../common/backend-provider';
import { PostgresTaskEventBroadcast } from './postgres-task-events';
import { RedisTaskEventBroadcast } from './redis-task-events';
import { TaskEventBroadcast } from './task-event-broadcast';
import { TaskEventsService } from './task-events.service';

@Global()
@Module({
  providers: [
    TaskEventsService,
    providerByBackend(TaskEventBroadcast, { redis: RedisTaskEventBroadcast, postgres: PostgresTaskEventBroadcast }),
  ],
  exports: [TaskEventsService],
})
export class EventsModule {}
