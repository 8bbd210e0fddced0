import type { RedisService } from '../queue/redis.service';

/**
 * The Redis pub/sub channel of one task's events, `<REDIS_PREFIX>:events:task:<id>`: whichever process commits a
 * transition publishes there; API processes with a live stream of that task open listen.
 */
export function taskEventsChannel(redis: RedisService, taskId: string): string {
  return redis.key('events', 'task', taskId);
}

/** What every task channel name starts with, to tell its messages from other channels' on a shared subscriber. */
export function taskEventsChannelPrefix(redis: RedisService): string {
  return `${redis.key('events', 'task')}:`;
}
