import Redis, { Cluster, type RedisOptions } from 'ioredis';

/** A connection to REDIS_URL: one Redis, or a Redis Cluster found from it (REDIS_CLUSTER=true). */
export type RedisClient = Redis | Cluster;

/** ioredis options from a redis:// or rediss:// URL (user, password, db number, TLS). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const parsed = new URL(url);
  const db = parsed.pathname && parsed.pathname !== '/' ? Number(parsed.pathname.slice(1)) : 0;
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: parsed.protocol === 'rediss:' ? {} : undefined,
    // Reconnect forever with a capped delay: the platform recovers by itself when Redis returns.
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  };
}

/**
 * A client of REDIS_URL with `options` on top. In cluster mode the URL is a seed node: the client asks it for the
 * others, and each node gets the URL's credentials and TLS.
 */
export function connectRedis(url: string, cluster: boolean, options: RedisOptions = {}): RedisClient {
  const all = { ...redisOptionsFromUrl(url), ...options };
  if (!cluster) return new Redis(all);
  const {
    host,
    port,
    db: _db,
    retryStrategy,
    enableOfflineQueue,
    lazyConnect,
    enableAutoPipelining,
    ...nodeOptions
  } = all;
  return new Cluster([{ host, port }], {
    redisOptions: nodeOptions,
    clusterRetryStrategy: retryStrategy,
    // ioredis gives CLUSTER SLOTS 1 s by default: a process busy booting misses that, drops its connections and
    // starts over, and subscriptions made meanwhile fail.
    slotsRefreshTimeout: 5000,
    enableOfflineQueue,
    lazyConnect,
    enableAutoPipelining,
  });
}
