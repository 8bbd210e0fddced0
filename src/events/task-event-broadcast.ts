import type { TaskEvent } from './task-event';

/**
 * Sends a task's event to every process listening to that task's channel (TaskEventSubscriptions), whichever process
 * made it: Redis pub/sub or Postgres NOTIFY, as QUEUE_BACKEND says.
 */
export abstract class TaskEventBroadcast {
  /** Resolves once the backend has taken the event; rejects when it could not. */
  abstract send(event: TaskEvent): Promise<void>;
}
