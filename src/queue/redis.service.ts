import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { connectRedis, type RedisClient } from './redis-options';

/**
 * The platform's own Redis client (BullMQ keeps its own connections). Commands fail at once while Redis is away
 * instead of piling up, so callers can answer 503 and health can say "down".
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly client: RedisClient;
  private subscriber?: RedisClient;
  private subscriptions: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: AppConfig) {
    this.client = connectRedis(config.redisUrl, config.redisCluster, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `${config.redisPrefix}:platform`,
      // The commands of one event-loop turn leave in one write: a worker's tasks each send a few small commands
      // (a provider's admission and outcome, events, counters), and a write per command cost more CPU than the
      // commands themselves.
      enableAutoPipelining: true,
      // With the queues and the shared state on Postgres nothing uses this client: it never connects (a machine
      // without Redis would otherwise log a refused connection at every reconnect attempt).
      lazyConnect: config.queueBackend === 'postgres',
    });
    let wasReady = false;
    this.client.on('ready', () => {
      if (wasReady) this.logger.log('Redis connection restored');
      wasReady = true;
    });
    this.client.on('error', (err: Error) => this.logger.warn(`Redis: ${err.message}`));
  }

  /** Whether the client speaks to a Redis Cluster (REDIS_CLUSTER), where commands without keys go to any master. */
  get clustered(): boolean {
    return this.config.redisCluster;
  }

  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  /**
   * `<prefix>:<parts>`: every key the platform writes outside BullMQ. Keys that one script, transaction or
   * multi-key command uses together share a `{…}` part (a Redis Cluster hash tag), so they land in one slot.
   */
  key(...parts: string[]): string {
    return [this.config.redisPrefix, ...parts].join(':');
  }

  /** A connection in subscriber mode, made on first use (only processes that listen need one). */
  getSubscriber(): RedisClient {
    if (!this.subscriber) {
      this.subscriber = connectRedis(this.config.redisUrl, this.config.redisCluster, {
        connectionName: `${this.config.redisPrefix}:subscriber`,
      });
      this.subscriber.on('error', (err: Error) => this.logger.warn(`Redis subscriber: ${err.message}`));
    }
    return this.subscriber;
  }

  /**
   * SUBSCRIBE, PSUBSCRIBE and their undoing on the subscriber connection, one after the other, in the order asked: a
   * subscription written while the connection is still being checked (ioredis sends them before it is ready) fails
   * the check and the subscriptions queued behind it, which on a cluster, whose subscriber connects late, happens at
   * boot.
   */
  subscription(command: 'subscribe' | 'psubscribe' | 'unsubscribe' | 'punsubscribe', name: string): Promise<void> {
    const subscriber = this.getSubscriber();
    const done = this.subscriptions.then(() => subscriber[command](name));
    this.subscriptions = done.catch(() => undefined);
    return done.then(() => undefined);
  }

  async ping(timeoutMs = 1000): Promise<void> {
    await withTimeout(this.client.ping(), timeoutMs, 'Redis ping timed out');
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([close(this.client), this.subscriber && close(this.subscriber)]);
  }
}

/**
 * QUIT when connected (replies still due arrive first); otherwise drop the connection: a QUIT queued for a Redis that
 * does not answer would wait for it forever.
 */
async function close(redis: RedisClient): Promise<void> {
  if (redis.status !== 'ready') return redis.disconnect();
  await withTimeout(redis.quit(), 1000, 'Redis QUIT timed out').catch(() => redis.disconnect());
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
