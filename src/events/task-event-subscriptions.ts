import { Logger, OnModuleDestroy } from '@nestjs/common';
import { DependencyUnavailableException } from '../common/domain-exception';
import { withTimeout } from '../queue/redis.service';
import type { TaskEventPayload } from './event-payload';
import type { TaskEventTopic } from './task-events.channel';

export type TaskEventListener = (payload: TaskEventPayload) => void;

/** Undoes one `subscribe`; calling it again does nothing. */
export type Unsubscribe = () => void;

interface Channel {
  topic: TaskEventTopic;
  listeners: Set<TaskEventListener>;
  /** Settles when the backend has confirmed that the channel is listened to. */
  ready: Promise<void>;
}

const SUBSCRIBE_TIMEOUT_MS = 3000;

/**
 * Event channels this process listens to — a task's, for its live stream and `Prefer: wait`; an owner's, or every
 * task's, for the live feeds — a channel is listened to when its first listener arrives and let go when its last
 * leaves, so the backend only sends a process the events it streams. The bookkeeping is here; the implementations
 * (Redis pub/sub, Postgres LISTEN/NOTIFY) name each topic's channel, say how it is listened to and hand what arrives
 * to `deliver`.
 */
export abstract class TaskEventSubscriptions implements OnModuleDestroy {
  protected readonly logger = new Logger('TaskEventSubscriptions');
  private readonly channels = new Map<string, Channel>();

  /** What a 503 names when the backend does not confirm a subscription. */
  protected abstract readonly dependency: 'redis' | 'postgres';
  /** The channel name of a topic's events. */
  protected abstract channelOf(topic: TaskEventTopic): string;
  /** Starts listening to a channel; resolves once the backend confirms. */
  protected abstract listen(name: string, topic: TaskEventTopic): Promise<void>;
  /** Stops listening; a later `listen` of the same channel must win over it. */
  protected abstract stopListening(name: string, topic: TaskEventTopic): void;

  /** Listeners of a topic in this process (0 once every stream of it has closed). */
  count(topic: TaskEventTopic): number {
    return this.channels.get(this.channelOf(topic))?.listeners.size ?? 0;
  }

  /**
   * Resolves once the channel is listened to, so nothing published after that is missed; 503 when the backend does not
   * confirm in time.
   */
  async subscribe(topic: TaskEventTopic, listener: TaskEventListener): Promise<Unsubscribe> {
    const name = this.channelOf(topic);
    let channel = this.channels.get(name);
    if (!channel) {
      const created: Channel = {
        topic,
        listeners: new Set(),
        ready: withTimeout(
          this.listen(name, topic),
          SUBSCRIBE_TIMEOUT_MS,
          `${this.dependency} did not confirm in time`,
        ),
      };
      created.ready.catch(() => this.drop(name, created));
      this.channels.set(name, (channel = created));
    }
    channel.listeners.add(listener);
    try {
      await channel.ready;
    } catch (err) {
      this.logger.warn({ topic }, `live events unavailable: ${(err as Error).message}`);
      throw new DependencyUnavailableException(this.dependency);
    }
    let subscribed = true;
    const current = channel;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      current.listeners.delete(listener);
      if (current.listeners.size === 0) this.drop(name, current);
    };
  }

  onModuleDestroy(): void {
    for (const [name, channel] of this.channels) this.drop(name, channel);
  }

  /** Whether anyone in this process listens to the channel. */
  protected isListened(name: string): boolean {
    return this.channels.has(name);
  }

  /** Hands an event that arrived on a channel to its listeners. */
  protected deliver(name: string, payload: TaskEventPayload): void {
    const channel = this.channels.get(name);
    if (!channel) return;
    for (const listener of channel.listeners) {
      try {
        listener(payload);
      } catch (err) {
        this.logger.warn({ taskId: payload.task_id }, `live event listener failed: ${(err as Error).message}`);
      }
    }
  }

  private drop(name: string, channel: Channel): void {
    if (this.channels.get(name) !== channel) return;
    this.channels.delete(name);
    this.stopListening(name, channel.topic);
  }
}
