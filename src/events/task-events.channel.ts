import { createHash } from 'node:crypto';
import type { RedisService } from '../queue/redis.service';

/**
 * Whose events a subscription hears: one task's (its stream, `Prefer: wait`), one user's tasks' (their live feed), or
 * every task's (an admin's feed).
 */
export type TaskEventTopic = { task: string } | { owner: string } | { all: true };

/**
 * A user's part of their channel's name: user ids are any string a token carries, and Postgres channel names are
 * identifiers of at most 63 bytes, so a hash stands for the id (128 bits: streams also check `user_id`).
 */
export function ownerKey(userId: string): string {
  return createHash('sha256').update(userId).digest('hex').slice(0, 32);
}

/**
 * The Redis pub/sub channel of one task's events, `<REDIS_PREFIX>:events:task:<id>`: whichever process commits a
 * transition publishes there; API processes with a live stream of that task open listen.
 */
export function taskEventsChannel(redis: RedisService, taskId: string): string {
  return redis.key('events', 'task', taskId);
}

/** The Redis channel of every event of one user's tasks, `<REDIS_PREFIX>:events:user:<ownerKey>`. */
export function ownerEventsChannel(redis: RedisService, userId: string): string {
  return redis.key('events', 'user', ownerKey(userId));
}

/** The pattern of every owner's channel: an admin's feed of all tasks is a PSUBSCRIBE of it. */
export function allOwnersEventsPattern(redis: RedisService): string {
  // Glob characters in REDIS_PREFIX stand for themselves.
  return `${redis.key('events', 'user').replace(/[*?[\]\\]/g, '\\$&')}:*`;
}

/** Whether a channel is one of the task event channels, to tell its messages from others' on a shared subscriber. */
export function isTaskEventsChannel(redis: RedisService, name: string): boolean {
  return name.startsWith(`${redis.key('events', 'task')}:`) || name.startsWith(`${redis.key('events', 'user')}:`);
}
