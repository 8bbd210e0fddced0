import { Injectable } from '@nestjs/common';
import { RedisService } from '../queue/redis.service';
import { HELD_LEASE_MS, HeldConnectionLeases } from './held-connection-leases';

/** Takes a place if there is one: answers -1, or how many places the user already holds. */
const ACQUIRE_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[4]) then return held end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return -1
`;

type Scripts = { heldAcquire(...args: (string | number)[]): Promise<number> };

/** A sorted set per user, `<prefix>:held:<user>`: lease ids scored by their expiry. */
@Injectable()
export class RedisHeldConnectionLeases extends HeldConnectionLeases {
  constructor(private readonly redis: RedisService) {
    super();
    redis.client.defineCommand('heldAcquire', { numberOfKeys: 1, lua: ACQUIRE_SCRIPT });
  }

  take(userId: string, lease: string, limit: number): Promise<number> {
    const now = Date.now();
    return (this.redis.client as unknown as Scripts).heldAcquire(
      this.keyOf(userId),
      now,
      now + HELD_LEASE_MS,
      lease,
      limit,
      HELD_LEASE_MS,
    );
  }

  async release(userId: string, lease: string): Promise<void> {
    await this.redis.client.zrem(this.keyOf(userId), lease);
  }

  async renew(leases: ReadonlyMap<string, string>): Promise<void> {
    if (!this.redis.isReady) return;
    const expiry = Date.now() + HELD_LEASE_MS;
    const byUser = new Map<string, string[]>();
    for (const [lease, userId] of leases) byUser.set(userId, [...(byUser.get(userId) ?? []), lease]);
    // A pipeline per user: on a Redis Cluster users' sets live in different slots, and a pipeline must stay on one.
    await Promise.all(
      [...byUser].map(([userId, ids]) => {
        const pipeline = this.redis.client.pipeline();
        for (const lease of ids) pipeline.zadd(this.keyOf(userId), expiry, lease);
        return pipeline.pexpire(this.keyOf(userId), HELD_LEASE_MS).exec();
      }),
    );
  }

  private keyOf(userId: string): string {
    return this.redis.key('held', userId);
  }
}
