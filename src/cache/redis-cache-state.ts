import { Logger, Injectable } from '@nestjs/common';
import { RedisService } from '../queue/redis.service';
import { SharedCacheState } from './shared-cache-state';

const REDIS_TTL_S = 24 * 3600;

/** The cache's shared state in Redis: entries with a day's expiry, counters in a hash, purges on a pub/sub channel. */
@Injectable()
export class RedisCacheState extends SharedCacheState {
  private readonly logger = new Logger('ResultCache');
  readonly hasSharedLayer = true;

  constructor(readonly redis: RedisService) {
    super();
  }

  async getEntry(key: string): Promise<string | null> {
    return this.redis.client.get(this.entryKey(key)).catch(() => null);
  }

  async setEntry(key: string, value: string): Promise<void> {
    // Entries spread over a Redis Cluster's slots, so no transaction spans an entry and the index: the index first,
    // so that an entry a purge must find is never missing from it (a failed SET leaves a harmless stale member).
    try {
      await this.redis.client.zadd(this.redis.key('cache', 'index'), Date.now() + REDIS_TTL_S * 1000, key);
      await this.redis.client.set(this.entryKey(key), value, 'EX', REDIS_TTL_S);
    } catch (err) {
      this.logger.warn(`cache entry not kept in Redis: ${(err as Error).message}`);
    }
  }

  async entryCount(): Promise<number> {
    const index = this.redis.key('cache', 'index');
    await this.redis.client.zremrangebyscore(index, '-inf', Date.now());
    return this.redis.client.zcard(index);
  }

  async claimFirstCall(key: string, taskId: string, ttlMs: number): Promise<boolean> {
    const first = await this.redis.client.eval(
      `if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
       if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
       redis.call('SADD', KEYS[2], ARGV[1])
       redis.call('PEXPIRE', KEYS[2], ARGV[2])
       return 0`,
      2,
      this.flightKey(key),
      this.waitingKey(key),
      taskId,
      ttlMs,
    );
    return first === 1;
  }

  async releaseFirstCall(key: string, taskId: string): Promise<string[]> {
    const waiting = await this.redis.client
      .eval(
        `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {} end
         redis.call('DEL', KEYS[1])
         local waiting = redis.call('SMEMBERS', KEYS[2])
         redis.call('DEL', KEYS[2])
         return waiting`,
        2,
        this.flightKey(key),
        this.waitingKey(key),
        taskId,
      )
      .catch(() => []);
    return Array.isArray(waiting) ? (waiting as string[]) : [];
  }

  async addCounts(counts: [string, number][]): Promise<void> {
    const pipeline = this.redis.client.pipeline();
    for (const [name, by] of counts) pipeline.hincrby(this.redis.key('cache', 'stats'), name, by);
    await pipeline.exec();
  }

  async readCounts(): Promise<Record<string, number>> {
    const counters = await this.redis.client.hgetall(this.redis.key('cache', 'stats'));
    return Object.fromEntries(Object.entries(counters).map(([name, value]) => [name, Number(value)]));
  }

  async purge(): Promise<void> {
    const index = this.redis.key('cache', 'index');
    const keys = await this.redis.client.zrange(index, 0, -1);
    // One key per UNLINK: on a Redis Cluster the entries live in different slots.
    for (let i = 0; i < keys.length; i += 500) {
      await Promise.all(keys.slice(i, i + 500).map((k) => this.redis.client.unlink(this.entryKey(k))));
    }
    await Promise.all([this.redis.client.unlink(index), this.redis.client.unlink(this.redis.key('cache', 'stats'))]);
    await this.redis.client.publish(this.purgeChannel, 'purge');
  }

  open(onPurge: () => void): void {
    this.redis.getSubscriber().on('message', (channel: string) => {
      if (channel === this.purgeChannel) onPurge();
    });
    void this.redis
      .subscription('subscribe', this.purgeChannel)
      .catch((err: Error) => this.logger.warn(`cache purge channel not subscribed: ${err.message}`));
  }

  /** The subscriber connection is RedisService's, closed with it. */
  async close(): Promise<void> {}

  entryKey(key: string): string {
    return this.redis.key('cache', 'entry', key);
  }

  private get purgeChannel(): string {
    return this.redis.key('cache', 'purge');
  }

  /** The claim and its waiters, used by one script together: the key as their hash tag puts both in one slot. */
  private flightKey(key: string): string {
    return this.redis.key('cache', 'flight', `{${key}}`);
  }

  private waitingKey(key: string): string {
    return this.redis.key('cache', 'flight-waiting', `{${key}}`);
  }
}
