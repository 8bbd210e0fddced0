import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type Redis from 'ioredis';
import { DependencyUnavailableException } from '../common/domain-exception';
import { RedisService, withTimeout } from '../queue/redis.service';
import type { TaskEventPayload } from './event-payload';
import { taskEventsChannel, taskEventsChannelPrefix } from './task-events.channel';

export type TaskEventListener = (payload: TaskEventPayload) => void;

/** Undoes one `subscribe`; calling it again does nothing. */
export type Unsubscribe = () => void;

interface Channel {
  listeners: Set<TaskEventListener>;
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  ready: Promise<void>;
}

const SUBSCRIBE_TIMEOUT_MS = 3000;

/**
 * Task channels this process listens to, over the process's one subscriber connection: a channel is subscribed
 * when its first listener arrives and unsubscribed when its last leaves, so Redis only sends a process the tasks it
 * streams.
 */
@Injectable()
export class TaskEventSubscriptions implements OnModuleDestroy {
  private readonly logger = new Logger('TaskEventSubscriptions');
  private readonly channels = new Map<string, Channel>();
  private subscriber?: Redis;

  constructor(private readonly redis: RedisService) {}

  /** Listeners of a task in this process (0 once every stream of it has closed). */
  count(taskId: string): number {
    return this.channels.get(taskEventsChannel(this.redis, taskId))?.listeners.size ?? 0;
  }

  /**
   * Resolves once the channel is subscribed, so nothing published after that is missed; 503 when Redis does not
   * confirm in time.
   */
  async subscribe(taskId: string, listener: TaskEventListener): Promise<Unsubscribe> {
    const name = taskEventsChannel(this.redis, taskId);
    let channel = this.channels.get(name);
    if (!channel) {
      const subscriber = this.connection();
      const created: Channel = {
        listeners: new Set(),
        ready: withTimeout(subscriber.subscribe(name), SUBSCRIBE_TIMEOUT_MS, 'Redis SUBSCRIBE timed out').then(
          () => undefined,
        ),
      };
      created.ready.catch(() => this.drop(name, created));
      this.channels.set(name, (channel = created));
    }
    channel.listeners.add(listener);
    try {
      await channel.ready;
    } catch (err) {
      this.logger.warn({ taskId }, `live events unavailable: ${(err as Error).message}`);
      throw new DependencyUnavailableException('redis');
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

  /** Forgets a channel and unsubscribes; commands on one connection run in order, so a later SUBSCRIBE wins. */
  private drop(name: string, channel: Channel): void {
    if (this.channels.get(name) !== channel) return;
    this.channels.delete(name);
    this.subscriber
      ?.unsubscribe(name)
      .catch((err: Error) => this.logger.warn(`unsubscribe from ${name} failed: ${err.message}`));
  }

  private connection(): Redis {
    if (this.subscriber) return this.subscriber;
    const subscriber = this.redis.getSubscriber();
    const prefix = taskEventsChannelPrefix(this.redis);
    // The connection is shared (cancel signals use it in workers): only our channels' messages are ours.
    subscriber.on('message', (name: string, message: string) => {
      if (name.startsWith(prefix)) this.dispatch(name, message);
    });
    return (this.subscriber = subscriber);
  }

  private dispatch(name: string, message: string): void {
    const channel = this.channels.get(name);
    if (!channel) return;
    let payload: TaskEventPayload;
    try {
      payload = JSON.parse(message) as TaskEventPayload;
    } catch {
      this.logger.warn(`unreadable message on ${name}`);
      return;
    }
    for (const listener of channel.listeners) {
      try {
        listener(payload);
      } catch (err) {
        this.logger.warn({ taskId: payload.task_id }, `live event listener failed: ${(err as Error).message}`);
      }
    }
  }
}
