import type { RedisService } from '../queue/redis.service';

/**
 * The Redis client a Redis implementation of a shared-state port needs. Modules inject RedisService as optional, so a
 * process on the Postgres backend can run without one; on the Redis backend its absence is a wiring mistake.
 */
export function requireRedis(redis: RedisService | undefined): RedisService {
  if (!redis) throw new Error('QUEUE_BACKEND is redis but no Redis client is provided');
  return redis;
}
