import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppConfig } from '../src/config/app-config';
import { createDataSource } from '../src/database/data-source';
import { SqlClient } from '../src/database/sql-client';
import { RedisService } from '../src/queue/redis.service';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';

export type StateBackend = 'redis' | 'postgres';

/** The two places shared state can live, for specs that run one body against both (`describe.each(STATE_BACKENDS)`). */
export const STATE_BACKENDS: StateBackend[] = ['redis', 'postgres'];

/**
 * The clients of one backend for a unit spec: a database of its own (cloned from the migrated template) and a Redis
 * prefix of its own, so runs side by side never share state. `close` ends them and drops the database.
 */
export interface StateBackendClients {
  backend: StateBackend;
  config: AppConfig;
  sql: SqlClient;
  redis: RedisService;
  dataSource: DataSource;
  /** The environment `config` was made from, to make a second process's config (same database and prefix). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function openStateBackend(
  backend: StateBackend,
  env: Record<string, string> = {},
): Promise<StateBackendClients> {
  const database = await createTestDatabase();
  const fullEnv = {
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '4',
    REDIS_URL,
    REDIS_PREFIX: `t${randomBytes(5).toString('hex')}`,
    QUEUE_BACKEND: backend,
    ...env,
  };
  const config = AppConfig.fromEnv(fullEnv);
  const dataSource = await createDataSource(database.url, 2).initialize();
  const sql = new SqlClient(config, dataSource);
  const redis = new RedisService(config);
  // Commands fail at once until the connection is ready (the client keeps no offline queue).
  // On the Postgres backend the service leaves its client unconnected; specs still use it (the Redis side, cleanup).
  if (redis.client.status === 'wait') await redis.client.connect();
  else if (redis.client.status !== 'ready') await new Promise((resolve) => redis.client.once('ready', resolve));
  return {
    backend,
    config,
    sql,
    redis,
    dataSource,
    env: fullEnv,
    async close() {
      const keys = await redis.client.keys(`${config.redisPrefix}:*`).catch(() => [] as string[]);
      if (keys.length) await redis.client.del(...keys);
      await redis.onApplicationShutdown();
      await sql.onApplicationShutdown();
      await dataSource.destroy();
      await dropTestDatabase(database.name);
    },
  };
}

/**
 * A RedisService whose client is ready, whatever the backend: on Postgres the service leaves its client unconnected,
 * but specs still use it (the Redis side of a `describe.each`, cleanup).
 */
export async function connectedRedis(config: AppConfig): Promise<RedisService> {
  const redis = new RedisService(config);
  if (redis.client.status === 'wait') await redis.client.connect();
  else if (redis.client.status !== 'ready') await new Promise((resolve) => redis.client.once('ready', resolve));
  return redis;
}
