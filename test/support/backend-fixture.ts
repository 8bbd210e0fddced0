import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { AppConfig } from '../../src/config/app-config';
import { PostgresNotifications } from '../../src/database/postgres-notifications';
import { SqlClient } from '../../src/database/sql-client';
import { RedisService } from '../../src/queue/redis.service';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './databases';

export type BackendName = 'redis' | 'postgres';

export const BACKENDS: BackendName[] = ['redis', 'postgres'];

/**
 * What the Redis and Postgres implementations of a port are built from in a unit spec: a database of its own, a Redis
 * prefix of its own, and as many "processes" as a spec wants (each `process()` has its own connections, as a second
 * platform process sharing the deployment would).
 */
export class BackendFixture {
  private readonly closers: (() => Promise<void>)[] = [];

  private constructor(
    readonly config: AppConfig,
    private readonly database: { name: string; url: string },
    private readonly redisPrefix: string,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<BackendFixture> {
    const database = await createTestDatabase();
    const redisPrefix = `t${randomBytes(5).toString('hex')}`;
    const config = AppConfig.fromEnv({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      LOG_LEVEL: 'silent',
      ...env,
    });
    return new BackendFixture(config, database, redisPrefix);
  }

  /** The connections of one more process of the deployment, Redis ready (its commands fail rather than queue). */
  async process(): Promise<{ sql: SqlClient; redis: RedisService; notifications: PostgresNotifications }> {
    const sql = new SqlClient(this.config, {} as DataSource);
    const redis = new RedisService(this.config);
    const notifications = new PostgresNotifications(this.config, sql);
    this.closers.push(async () => {
      await notifications.onApplicationShutdown();
      await sql.onApplicationShutdown();
      await redis.onApplicationShutdown();
    });
    if (!redis.isReady) await new Promise((resolve) => redis.client.once('ready', resolve));
    return { sql, redis, notifications };
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    await dropTestDatabase(this.database.name);
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${this.redisPrefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  }
}
