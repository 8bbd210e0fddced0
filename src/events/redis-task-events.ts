import { Injectable } from '@nestjs/common';
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
 * Publishes each event's payload on the task's and its owner's Redis channels, as one pipeline (one round trip). The
 * feed of every task (admins) is a pattern subscription of the owners' channels, so it costs publishers nothing.
 */
@Injectable()
export class RedisTaskEventBroadcast extends TaskEventBroadcast {
  constructor(private readonly redis: RedisService) {
    super();
  }

  async send(event: TaskEvent): Promise<void> {
    const message = JSON.stringify(toEventPayload(event));
    const owner = ownerEventsChannel(this.redis, event.userId);
    if (!reachesTaskChannel(event)) {
      await this.redis.client.publish(owner, message);
      return;
    }
    const replies = await this.redis.client
      .pipeline()
      .publish(taskEventsChannel(this.redis, event.taskId), message)
      .publish(owner, message)
      .exec();
    const failed = replies?.find(([err]) => err)?.[0];
    if (failed) throw failed;
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
