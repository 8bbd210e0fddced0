import type { Job, Queue, Worker } from 'bullmq';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { AppConfig } from '../src/config/app-config';
import { SqlClient } from '../src/database/sql-client';
import { PostgresQueueBackend } from '../src/queue/postgres-queue-backend';
import { QueueName } from '../src/queue/queue.constants';
import { QueueBackend } from '../src/queue/queue-backend';
import { RedisQueueBackend } from '../src/queue/redis-queue-backend';
import { RedisService } from '../src/queue/redis.service';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { waitUntil } from './support/wait';

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The same behaviour from both backends, on the real Redis and a database of this file's own. */
describe.each(['redis', 'postgres'] as const)('the %s queue backend', (kind) => {
  let database: { name: string; url: string };
  let redis: RedisService;
  let sql: SqlClient;
  let backend: QueueBackend & { onApplicationShutdown(): Promise<void> };
  let queue: Queue;
  const workers: Worker[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    const config = AppConfig.fromEnv({
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '2',
      REDIS_URL,
      REDIS_PREFIX: `t${randomBytes(5).toString('hex')}`,
      QUEUE_BACKEND: kind,
    });
    redis = new RedisService(config);
    // The table mapping (the data source) is not used by the statements under test.
    sql = new SqlClient(config, {} as DataSource);
    backend = kind === 'postgres' ? new PostgresQueueBackend(config, sql) : new RedisQueueBackend(config, redis);
    queue = backend.createQueue(QueueName.Tasks);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await backend?.onApplicationShutdown();
    await Promise.all([redis?.onApplicationShutdown(), sql?.onApplicationShutdown()]);
    if (database) await dropTestDatabase(database.name);
  });

  function startWorker(handler: (job: Job, token?: string) => Promise<unknown>): Worker {
    const worker = backend.createWorker(QueueName.Tasks, handler, { concurrency: 2, lockDuration: 5000 });
    workers.push(worker);
    return worker;
  }

  it('is the backend it was asked for, and available', async () => {
    expect(backend.kind).toBe(kind);
    await waitUntil('the backend to be available', () => backend.isAvailable);
  });

  it('runs a job added to its queue, by priority, and keeps its result', async () => {
    const seen: string[] = [];
    const gate = deferred<void>();
    await queue.add('task.run', { n: 'low' }, { jobId: 'low', priority: 10 });
    await queue.add('task.run', { n: 'high' }, { jobId: 'high', priority: 1 });
    const worker = startWorker(async (job) => {
      seen.push(job.id!);
      if (seen.length === 2) gate.resolve(undefined);
      return { ran: job.id };
    });
    await gate.promise;
    expect(seen).toEqual(['high', 'low']);
    await waitUntil('the job to complete', async () => (await queue.getJob('low'))?.returnvalue);
    expect((await queue.getJob('low'))?.returnvalue).toEqual({ ran: 'low' });
    await worker.close();
  });

  it("says which run holds a job's lock while it runs, and no one once it is done", async () => {
    const running = deferred<string | undefined>();
    const release = deferred<void>();
    const worker = startWorker(async (_job, token) => {
      running.resolve(token);
      await release.promise;
    });
    await queue.add('task.run', {}, { jobId: 'locked' });
    const token = await running.promise;
    expect(token).toEqual(expect.any(String));
    expect(await backend.lockHolder(worker, 'locked')).toBe(token);
    release.resolve(undefined);
    await waitUntil('the job to complete', async () => (await queue.getJob('locked'))?.finishedOn);
    expect(await backend.lockHolder(worker, 'locked')).toBeNull();
    await worker.close();
  });

  it('counts its workers', async () => {
    const worker = startWorker(async () => undefined);
    await worker.waitUntilReady();
    await waitUntil('the worker to be counted', () => queue.getWorkersCount(), { until: (n) => n >= 1 });
    await worker.close();
  });
});
