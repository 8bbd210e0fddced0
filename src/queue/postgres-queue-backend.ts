import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { createPostgresBackend, Queue, quoteSchemaName, Worker } from 'bullmq';
import { Pool } from 'pg';
import { AppConfig } from '../config/app-config';
import { SqlClient } from '../database/sql-client';
import { queueTelemetry } from '../telemetry/telemetry';
import { createQueueStorePool } from './queue-store-pool';
import { BULLMQ_SCHEMA, QueueName } from './queue.constants';
import { JobHandler, PromoteOutcome, QueueBackend, WorkerSettings } from './queue-backend';

/** Connections each worker keeps for itself: BullMQ's LISTEN for new jobs (tasks, webhooks, maintenance). */
const LISTENING_WORKERS = 3;

/** What BullMQ's Postgres backend and its connection memoize: the promise of their readiness. */
interface MemoizedReadiness {
  readyPromise?: Promise<void>;
  waitUntilReady(): Promise<void>;
}

/**
 * BullMQ's Postgres backend, whose readiness is asked again after it failed. BullMQ memoizes the first look at the
 * pool and the schema, a failed one too: a queue whose first statement found Postgres away (restarting, or too slow to
 * answer a connection within its timeout) failed every statement after it, for the life of the process. Every
 * statement awaits the connection's readiness first, so forgetting a failed one is enough for the next to try again.
 */
export const createRecoveringPostgresBackend: typeof createPostgresBackend = (name, opts, factoryOpts) => {
  const backend = createPostgresBackend(name, opts, factoryOpts);
  const memoized = backend as unknown as MemoizedReadiness & { connection?: MemoizedReadiness };
  for (const target of [memoized.connection, memoized]) {
    if (!target || typeof target.waitUntilReady !== 'function') continue;
    const ready = target.waitUntilReady.bind(target);
    target.waitUntilReady = () => {
      const promise = ready();
      const memo = target.readyPromise;
      promise.catch(() => {
        if (target.readyPromise === memo) target.readyPromise = undefined;
      });
      return promise;
    };
  }
  return backend;
};

/**
 * BullMQ on the platform's own Postgres database (QUEUE_BACKEND=postgres): its tables in the `bullmq` schema, claims
 * with `FOR UPDATE SKIP LOCKED`, new jobs announced with LISTEN/NOTIFY. Every queue and worker of the process shares
 * one pool, so the connections a process opens stay bounded (DATABASE_POOL_SIZE, plus one held by each worker for
 * its LISTEN); BullMQ rebuilds a LISTEN connection that breaks (Postgres restarted) by itself.
 */
@Injectable()
export class PostgresQueueBackend extends QueueBackend implements OnApplicationShutdown {
  readonly kind = 'postgres';
  readonly dependency = 'postgres';
  private readonly logger = new Logger('QueueBackend');
  private readonly pool: Pool;
  private readonly queues: Queue[] = [];

  constructor(
    config: AppConfig,
    private readonly sql: SqlClient,
  ) {
    super();
    this.pool = createQueueStorePool({
      connectionString: config.databaseUrl,
      // BullMQ's statements name its tables without a schema: a pool handed to it sets the search path itself.
      options: `-c search_path=${quoteSchemaName(BULLMQ_SCHEMA)}`,
      max: config.databasePoolSize + LISTENING_WORKERS,
      // A LISTEN connection dropped without a word (a NAT, a failover) is noticed and rebuilt.
      keepAlive: true,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30000,
    });
    // An idle connection that breaks (Postgres restarted) is dropped from the pool; without a listener it would
    // take the process down.
    this.pool.on('error', (err) => this.logger.warn(`idle queue connection lost: ${err.message}`));
  }

  createQueue(name: QueueName): Queue {
    const queue = new Queue(
      name,
      { connection: this.pool, telemetry: queueTelemetry() },
      createRecoveringPostgresBackend,
    ) as unknown as Queue;
    this.queues.push(queue);
    return queue;
  }

  createWorker(name: QueueName, handler: JobHandler, settings: WorkerSettings): Worker {
    return new Worker(
      name,
      handler,
      // A lost connection is tried again after a second (BullMQ's default is 15 s), not at once (queue-store-pool.ts).
      { runRetryDelay: 1000, ...settings, connection: this.pool, telemetry: queueTelemetry() },
      createRecoveringPostgresBackend,
    ) as unknown as Worker;
  }

  /** The jobs live in the platform's own database: when it is away, the task's own insert answers 503 first. */
  get isAvailable(): boolean {
    return true;
  }

  /** As on Redis, where the lock is a key that expires: a lock past its time is held by no one. */
  async lockHolder(worker: Worker, jobId: string): Promise<string | null> {
    const [row] = await this.sql.rows<{ lock_token: string | null }>(
      `SELECT lock_token FROM ${quoteSchemaName(BULLMQ_SCHEMA)}.job
        WHERE queue = $1 AND id = $2 AND state = 'active' AND locked_until_ms > $3`,
      [worker.name, jobId, Date.now()],
    );
    return row?.lock_token ?? null;
  }

  /**
   * BullMQ's `promote` on Postgres reads the job's state, then updates the row without asking again: a job that a
   * worker claimed in between (its delay ran out) would be put back to waiting while it runs, and run twice at once.
   * Holding the row's lock first closes that gap; workers claim with SKIP LOCKED, so they pass it by meanwhile.
   */
  async promoteDelayed(queue: Queue, jobId: string): Promise<PromoteOutcome> {
    const schema = quoteSchemaName(BULLMQ_SCHEMA);
    return this.sql.transaction(async (tx) => {
      const [job] = await tx.rows<{ state: string }>(
        `SELECT state FROM ${schema}.job WHERE queue = $1 AND id = $2 FOR UPDATE`,
        [queue.name, jobId],
      );
      if (job?.state !== 'delayed') return job?.state === 'active' ? 'active' : 'other';
      await tx.rows(`SELECT ${schema}.promote($1, $2)`, [queue.name, jobId]);
      return 'promoted';
    });
  }

  /**
   * BullMQ's `remove` on Postgres looks at the job's lock, then deletes the row: a worker that claimed the job in
   * between (a delayed job falling due) would lose it under its feet. As for promote, the row's lock comes first.
   */
  async removeJob(queue: Queue, jobId: string): Promise<boolean> {
    const schema = quoteSchemaName(BULLMQ_SCHEMA);
    return this.sql.transaction(async (tx) => {
      const [job] = await tx.rows<{ locked: boolean }>(
        `SELECT lock_token IS NOT NULL AND locked_until_ms > $3 AS locked
           FROM ${schema}.job WHERE queue = $1 AND id = $2 FOR UPDATE`,
        [queue.name, jobId, Date.now()],
      );
      if (!job) return true;
      if (job.locked) return false;
      const [removed] = await tx.rows<{ n: number }>(`SELECT ${schema}.remove($1, $2, true) AS n`, [queue.name, jobId]);
      return Number(removed?.n) > 0;
    });
  }

  /** After the workers (closed by their owners before shutdown): the queues, then the pool they shared. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
    await this.pool.end();
  }
}
