import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig } from '../config/app-config';
import { redisOptionsFromUrl } from './redis-options';

/**
 * The platform's own Redis client (BullMQ keeps its own connections). Commands fail at once while Redis is away
 * instead of piling up, so callers can answer 503 and health can say "down".
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly client: Redis;
  private subscriber?: Redis;

  constructor(private readonly config: AppConfig) {
    this.client = new Redis({
      ...redisOptionsFromUrl(config.redisUrl),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: `${config.redisPrefix}:platform`,
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

  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  /** `<prefix>:<parts>`: every key the platform writes outside BullMQ. */
  key(...parts: string[]): string {
    return [this.config.redisPrefix, ...parts].join(':');
  }

  /** A connection in subscriber mode, made on first use (only processes that listen need one). */
  getSubscriber(): Redis {
    if (!this.subscriber) {
      this.subscriber = new Redis({
        ...redisOptionsFromUrl(this.config.redisUrl),
        connectionName: `${this.config.redisPrefix}:subscriber`,
      });
      this.subscriber.on('error', (err: Error) => this.logger.warn(`Redis subscriber: ${err.message}`));
    }
    return this.subscriber;
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
async function close(redis: Redis): Promise<void> {
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
