import { Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { RedisService } from '../queue/redis.service';
import { toEventPayload, type TaskEventPayload } from './event-payload';
import type { TaskEvent } from './task-event';
import { TaskEventBroadcast } from './task-event-broadcast';
import { TaskEventSubscriptions } from './task-event-subscriptions';
import { taskEventsChannel, taskEventsChannelPrefix } from './task-events.channel';

/** Publishes each event's payload on the task's Redis channel. */
@Injectable()
export class RedisTaskEventBroadcast extends TaskEventBroadcast {
  constructor(private readonly redis: RedisService) {
    super();
  }

  async send(event: TaskEvent): Promise<void> {
    const message = JSON.stringify(toEventPayload(event));
    await this.redis.client.publish(taskEventsChannel(this.redis, event.taskId), message);
  }
}

/** Task channels over the process's one Redis subscriber connection. */
@Injectable()
export class RedisTaskEventSubscriptions extends TaskEventSubscriptions {
  protected readonly dependency = 'redis';
  private subscriber?: Redis;

  constructor(private readonly redis: RedisService) {
    super();
  }

  protected channelOf(taskId: string): string {
    return taskEventsChannel(this.redis, taskId);
  }

  protected async listen(name: string): Promise<void> {
    await this.connection().subscribe(name);
  }

  /** Commands on one connection run in order, so a later SUBSCRIBE wins. */
  protected stopListening(name: string): void {
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
      if (name.startsWith(prefix)) this.receive(name, message);
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
