import { ConnectionClosedError } from 'bullmq';
import { Pool, PoolClient, PoolConfig } from 'pg';

/** Socket errors and the server's "going away" classes (57P01-57P03 shutdown, 08xxx connection exceptions). */
const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || /^(57P0[123]|08\d{3})$/.test(code))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}

function rethrow(err: unknown): never {
  if (isConnectionFailure(err)) throw new ConnectionClosedError((err as Error).message, err);
  throw err;
}

const wrapped = Symbol('connection-aware');

function wrapQuery<T extends { query: (...args: never[]) => unknown }>(target: T): T {
  const query = target.query.bind(target) as (...args: unknown[]) => unknown;
  target.query = (...args: unknown[]) => {
    const result = query(...args);
    return result instanceof Promise ? result.catch(rethrow) : result;
  };
  return target;
}

/**
 * The pool BullMQ's Postgres backend runs on, with one difference: a lost connection fails as BullMQ's
 * ConnectionClosedError. BullMQ waits `runRetryDelay` before trying again after that error, and only after that one;
 * any other error (what `pg` throws for a reset socket) makes a worker ask again at once, in a loop, while Postgres is
 * away. Ioredis needs nothing of the kind: it holds commands until it has reconnected.
 */
export function createQueueStorePool(config: PoolConfig): Pool {
  const pool = wrapQuery(new Pool(config));
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  pool.connect = ((...args: unknown[]) => {
    if (args.length) return connect(...args); // the callback form: not used by BullMQ
    return (connect() as Promise<PoolClient>).then((client) => {
      const marked = client as PoolClient & { [wrapped]?: true };
      if (!marked[wrapped]) {
        wrapQuery(client);
        marked[wrapped] = true;
      }
      return client;
    }, rethrow);
  }) as Pool['connect'];
  return pool;
}
