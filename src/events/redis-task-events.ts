import { Injectable } from '@nestjs/common';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../queue/redis-options';
import { RedisService } from '../queue/redis.service';
import { toEventPayload, type TaskEventPayload } from './event-payload';
import type { TaskEvent } from './task-event';
import { reachesTaskChannel, TaskEventBroadcast } from './task-event-broadcast';
import { TaskEventSubscriptions } from './task-event-subscriptions';
import {
  allOwnersEventsPattern,
  isTaskEventsChannel,
  ownerEventsChannel,
  taskEventsChannel,
  type TaskEventTopic,
} from './task-events.channel';

/**
 * Publishes each event's payload on the task's and its owner's Redis channels. The events sent during one turn of
 * the event loop (a group commit moves many tasks at once; a busy API process answers many submits) leave together as
 * one pipeline, one write and one round trip, in the order they were sent. The feed of every task (admins) is a
 * pattern subscription of the owners' channels, so it costs publishers nothing.
 *
 * On a Redis Cluster PUBLISH names no key, so ioredis sends each one to a random master, which relays it to the others
 * over the cluster bus; two events of one task sent through two masters could reach a subscriber in either order, and
 * streams drop an event older than one they sent. Each event's pipeline therefore also reads the owner channel's name
 * as a key (EXISTS, which touches nothing): the pipeline goes to that slot's master, so every event of one owner
 * leaves through one node and arrives in the order it was sent. (Owners' channels lie in different slots, so there
 * each event keeps a pipeline of its own.)
 */
@Injectable()
export class RedisTaskEventBroadcast extends TaskEventBroadcast {
  private pending: { event: TaskEvent; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(private readonly redis: RedisService) {
    super();
  }

  send(event: TaskEvent): Promise<void> {
    if (this.redis.clustered) return this.sendAlone(event);
    return new Promise<void>((resolve, reject) => {
      if (!this.pending.length) setImmediate(() => void this.flush());
      this.pending.push({ event, resolve, reject });
    });
  }

  private async sendAlone(event: TaskEvent): Promise<void> {
    const owner = ownerEventsChannel(this.redis, event.userId);
    const pipeline = this.redis.client.pipeline().exists(owner);
    const replies = await this.queue(pipeline, event, owner).exec();
    const failed = replies?.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }

  /** The events sent since the last flush, as one pipeline; each answered with its own commands' outcome. */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const pipeline = this.redis.client.pipeline();
    const ends: number[] = [];
    for (const { event } of batch) {
      this.queue(pipeline, event, ownerEventsChannel(this.redis, event.userId));
      ends.push(pipeline.length);
    }
    let replies: [Error | null, unknown][];
    try {
      replies = (await pipeline.exec()) ?? [];
    } catch (err) {
      for (const { reject } of batch) reject(err);
      return;
    }
    batch.forEach(({ resolve, reject }, i) => {
      const failed = replies.slice(i ? ends[i - 1] : 0, ends[i]).find(([err]) => err)?.[0];
      if (failed) reject(failed);
      else resolve();
    });
  }

  private queue(pipeline: ChainableCommander, event: TaskEvent, owner: string): ChainableCommander {
    const message = JSON.stringify(toEventPayload(event));
    if (reachesTaskChannel(event)) pipeline.publish(taskEventsChannel(this.redis, event.taskId), message);
    return pipeline.publish(owner, message);
  }
}

/** Task and owner channels over the process's one Redis subscriber connection. */
@Injectable()
export class RedisTaskEventSubscriptions extends TaskEventSubscriptions {
  protected readonly dependency = 'redis';
  private subscriber?: RedisClient;

  constructor(private readonly redis: RedisService) {
    super();
  }

  protected channelOf(topic: TaskEventTopic): string {
    if ('task' in topic) return taskEventsChannel(this.redis, topic.task);
    if ('owner' in topic) return ownerEventsChannel(this.redis, topic.owner);
    return allOwnersEventsPattern(this.redis);
  }

  protected async listen(name: string, topic: TaskEventTopic): Promise<void> {
    this.connection();
    await this.redis.subscription('all' in topic ? 'psubscribe' : 'subscribe', name);
  }

  /** Subscriptions and their undoing go in the order asked (RedisService.subscription), so a later SUBSCRIBE wins. */
  protected stopListening(name: string, topic: TaskEventTopic): void {
    if (!this.subscriber) return;
    this.redis
      .subscription('all' in topic ? 'punsubscribe' : 'unsubscribe', name)
      .catch((err: Error) => this.logger.warn(`unsubscribe from ${name} failed: ${err.message}`));
  }

  private connection(): RedisClient {
    if (this.subscriber) return this.subscriber;
    const subscriber = this.redis.getSubscriber();
    const pattern = allOwnersEventsPattern(this.redis);
    // The connection is shared (cancel signals use it in workers): only our channels' messages are ours.
    subscriber.on('message', (name: string, message: string) => {
      if (isTaskEventsChannel(this.redis, name)) this.receive(name, message);
    });
    subscriber.on('pmessage', (matched: string, _name: string, message: string) => {
      if (matched === pattern) this.receive(matched, message);
    });
    return (this.subscriber = subscriber);
  }

  private receive(name: string, message: string): void {
    if (!this.isListened(name)) return;
    let payload: TaskEventPayload;
    try {
      payload = JSON.parse(message) as TaskEventPayload;
    } catch {
      this.logger.warn(`unreadable message on ${name}`);
      return;
    }
    this.deliver(name, payload);
  }
}
