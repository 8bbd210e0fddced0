import { TaskEventType } from '../tasks/task.enums';
import type { TaskEvent } from './task-event';

/**
 * Sends a task's event to every process listening to that task's channel or its owner's (TaskEventSubscriptions),
 * whichever process made it: Redis pub/sub or Postgres NOTIFY, as QUEUE_BACKEND says. The channels of one event go in
 * one round trip: the event path never waits on a second.
 */
export abstract class TaskEventBroadcast {
  /** Resolves once the backend has taken the event; rejects when it could not. */
  abstract send(event: TaskEvent): Promise<void>;
}

/**
 * Whether an event goes to its task's channel too: a task's stream or wait opens on a task that exists already, so
 * nobody listens there for its creation. Every event goes to its owner's channel (their feed of all their tasks).
 */
export function reachesTaskChannel(event: TaskEvent): boolean {
  return event.type !== TaskEventType.Created;
}
