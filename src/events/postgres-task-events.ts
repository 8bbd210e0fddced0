import { Injectable } from '@nestjs/common';
import { MAX_NOTIFY_PAYLOAD_BYTES, PostgresNotifications } from '../database/postgres-notifications';
import type { TaskEventType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { payloadOf, toEventPayload, type TaskEventPayload } from './event-payload';
import type { TaskEvent } from './task-event';
import { TaskEventBroadcast } from './task-event-broadcast';
import { TaskEventSubscriptions } from './task-event-subscriptions';

const CHANNEL_PREFIX = 'task_events:';

/** The NOTIFY channel of one task's events (a Postgres identifier: at most 63 bytes, a uuid fits). */
export function postgresTaskEventsChannel(taskId: string): string {
  return `${CHANNEL_PREFIX}${taskId}`;
}

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

/** NOTIFYs each event on the task's channel, in the order this process made them. */
@Injectable()
export class PostgresTaskEventBroadcast extends TaskEventBroadcast {
  constructor(private readonly notifications: PostgresNotifications) {
    super();
  }

  async send(event: TaskEvent): Promise<void> {
    await this.notifications.notify(postgresTaskEventsChannel(event.taskId), notificationOf(event));
  }
}

/**
 * Task channels over the process's one LISTEN connection. Events of one task reach its listeners in the order they
 * arrived, also when one of them had to be read from the row first.
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
      if (channel.startsWith(CHANNEL_PREFIX)) this.receive(channel, message);
    });
  }

  protected channelOf(taskId: string): string {
    return postgresTaskEventsChannel(taskId);
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
