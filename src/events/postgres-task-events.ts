import { Injectable } from '@nestjs/common';
import { MAX_NOTIFY_PAYLOAD_BYTES, PostgresNotifications } from '../database/postgres-notifications';
import type { TaskEventType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { payloadOf, toEventPayload, type TaskEventPayload } from './event-payload';
import type { TaskEvent } from './task-event';
import { reachesTaskChannel, TaskEventBroadcast } from './task-event-broadcast';
import { TaskEventSubscriptions } from './task-event-subscriptions';
import { ownerKey, type TaskEventTopic } from './task-events.channel';

/** What the names of every task event channel start with. */
const CHANNELS_PREFIX = 'task_events';

/** The NOTIFY channel of one task's events (a Postgres identifier: at most 63 bytes, a uuid fits). */
export function postgresTaskEventsChannel(taskId: string): string {
  return `${CHANNELS_PREFIX}:${taskId}`;
}

/** The NOTIFY channel of every event of one user's tasks (49 bytes: the owner's hash, not the id, is in the name). */
export function postgresOwnerEventsChannel(userId: string): string {
  return `${CHANNELS_PREFIX}_user:${ownerKey(userId)}`;
}

/** The NOTIFY channel of every task's events (admins' feed). */
export const POSTGRES_ALL_EVENTS_CHANNEL = `${CHANNELS_PREFIX}_all`;

/**
 * What is sent in place of a payload too large for NOTIFY (a task's output or metadata can be): the event's identity,
 * from which a listener rebuilds the payload out of the task's row with the same function.
 */
export interface TaskEventReference {
  ref: { task_id: string; sequence: number; event_type: TaskEventType; timestamp: string };
}

/** The NOTIFY payload of an event: the event payload itself when it fits, else a reference to it. */
export function notificationOf(event: TaskEvent): string {
  const message = JSON.stringify(toEventPayload(event));
  if (Buffer.byteLength(message) <= MAX_NOTIFY_PAYLOAD_BYTES) return message;
  const reference: TaskEventReference = {
    ref: {
      task_id: event.taskId,
      sequence: event.sequence,
      event_type: event.type,
      timestamp: event.timestamp.toISOString(),
    },
  };
  return JSON.stringify(reference);
}

/**
 * NOTIFYs each event on the task's channel, its owner's and the channel of all tasks, in one statement, in the order
 * this process made them. LISTEN has no patterns, so the feed of every task needs a channel of its own; a third
 * notification in the same statement costs no round trip, only its bytes in the notification queue (freed once
 * listeners, if any, have read it), where one shared channel for every feed would make each process with a user's
 * feed open parse — and for large events read the row of — every other user's events too.
 */
@Injectable()
export class PostgresTaskEventBroadcast extends TaskEventBroadcast {
  constructor(private readonly notifications: PostgresNotifications) {
    super();
  }

  async send(event: TaskEvent): Promise<void> {
    const payload = notificationOf(event);
    const channels = [postgresOwnerEventsChannel(event.userId), POSTGRES_ALL_EVENTS_CHANNEL];
    if (reachesTaskChannel(event)) channels.unshift(postgresTaskEventsChannel(event.taskId));
    await this.notifications.notifyTogether(channels.map((channel) => ({ channel, payload })));
  }
}

/**
 * Task event channels over the process's one LISTEN connection. Events of one channel reach its listeners in the order
 * they arrived, also when one of them had to be read from the row first.
 */
@Injectable()
export class PostgresTaskEventSubscriptions extends TaskEventSubscriptions {
  protected readonly dependency = 'postgres';
  /** Per channel, the delivery of the last event that arrived (a read of the row may be under way). */
  private readonly delivering = new Map<string, Promise<void>>();

  constructor(
    private readonly notifications: PostgresNotifications,
    private readonly tasks: TasksRepository,
  ) {
    super();
    notifications.onNotification((channel, message) => {
      if (channel.startsWith(CHANNELS_PREFIX)) this.receive(channel, message);
    });
  }

  protected channelOf(topic: TaskEventTopic): string {
    if ('task' in topic) return postgresTaskEventsChannel(topic.task);
    if ('owner' in topic) return postgresOwnerEventsChannel(topic.owner);
    return POSTGRES_ALL_EVENTS_CHANNEL;
  }

  protected listen(name: string): Promise<void> {
    return this.notifications.listen(name);
  }

  protected stopListening(name: string): void {
    this.notifications.unlisten(name);
  }

  private receive(name: string, message: string): void {
    if (!this.isListened(name)) return;
    let parsed: TaskEventPayload | TaskEventReference;
    try {
      parsed = JSON.parse(message) as TaskEventPayload | TaskEventReference;
    } catch {
      this.logger.warn(`unreadable notification on ${name}`);
      return;
    }
    const previous = this.delivering.get(name) ?? Promise.resolve();
    const delivered = previous
      .then(() => ('ref' in parsed ? this.read(parsed) : parsed))
      .then((payload) => payload && this.deliver(name, payload))
      .catch((err: Error) => this.logger.warn(`live event on ${name} lost: ${err.message}`))
      .finally(() => {
        if (this.delivering.get(name) === delivered) this.delivering.delete(name);
      });
    this.delivering.set(name, delivered);
  }

  /**
   * The payload of a referenced event, rebuilt from the task's row. A row that has moved past the event no longer
   * holds what it said: that event is skipped (a later one is on its way, and a stream only goes forward).
   */
  private async read({ ref }: TaskEventReference): Promise<TaskEventPayload | undefined> {
    const task = await this.tasks.findById(ref.task_id);
    if (!task || task.eventSeq !== ref.sequence) {
      this.logger.debug({ taskId: ref.task_id, sequence: ref.sequence }, 'referenced event superseded');
      return undefined;
    }
    return payloadOf(ref.event_type, task, ref.sequence, new Date(ref.timestamp));
  }
}
