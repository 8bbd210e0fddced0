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
import { TcpProxy } from './support/tcp-proxy';
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

  it('promotes a delayed job, and never one a worker runs, even when asked as the worker claims it', async () => {
    const runs = new Map<string, number>();
    let running = 0;
    let twice = 0;
    const ids = Array.from({ length: 40 }, (_, i) => `race-${i}`);
    const worker = startWorker(async (job) => {
      running++;
      runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
      if (runs.get(job.id!)! > 1) twice++;
      await new Promise((r) => setTimeout(r, 30));
      running--;
    });
    worker.concurrency = 8;
    await worker.waitUntilReady();
    // Each job falls due while it is being promoted over and over: either way in, it must run once.
    await Promise.all(ids.map((id, i) => queue.add('task.run', {}, { jobId: id, delay: 20 + (i % 10) * 10 })));
    const done = () => ids.every((id) => runs.has(id)) && running === 0;
    while (!done()) await Promise.all(ids.map((id) => backend.promoteDelayed(queue, id)));
    await waitUntil('every job to finish', async () => (await queue.getJobCounts('completed')).completed >= ids.length);
    expect(twice).toBe(0);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect((await queue.getJob('race-0'))?.finishedOn).toEqual(expect.any(Number));
    // One not delayed is left as it is.
    await queue.add('task.run', {}, { jobId: 'plain' });
    await expect(backend.promoteDelayed(queue, 'missing')).resolves.toBe('other');
    await expect(backend.promoteDelayed(queue, 'plain')).resolves.not.toBe('promoted');
    await worker.close();
  });

  // On Redis a promote or a remove is one Lua script, with no gap between its check and its change.
  if (kind === 'postgres') {
    /**
     * Starts `act` on a delayed job while a claim of it is under way (its row locked), lets `act` reach the row and
     * wait for it, then commits the claim: the job is active, held by a worker, when `act` goes on.
     */
    async function duringClaim<T>(jobId: string, act: () => Promise<T>): Promise<T> {
      await queue.add('task.run', {}, { jobId, delay: 60_000 });
      let acted!: Promise<T>;
      await sql.transaction(async (claim) => {
        await claim.rows(`SELECT 1 FROM bullmq.job WHERE queue = $1 AND id = $2 FOR UPDATE`, [queue.name, jobId]);
        acted = act();
        await new Promise((r) => setTimeout(r, 200));
        await claim.rows(
          `UPDATE bullmq.job SET state = 'active', lock_token = 'claim', locked_until_ms = $3
            WHERE queue = $1 AND id = $2`,
          [queue.name, jobId, Date.now() + 60_000],
        );
      });
      return acted;
    }

    it('leaves a job alone that a worker claimed while the promote waited for it', async () => {
      expect(await duringClaim('claimed', () => backend.promoteDelayed(queue, 'claimed'))).toBe('active');
      expect(await (await queue.getJob('claimed'))!.getState()).toBe('active');
    });

    it('leaves a job alone that a worker claimed while the remove waited for it', async () => {
      expect(await duringClaim('claimed-rm', () => backend.removeJob(queue, 'claimed-rm'))).toBe(false);
      expect(await (await queue.getJob('claimed-rm'))!.getState()).toBe('active');
    });
  }

  it('says what a promote found: promoted, held by a worker (which may be moving it to delayed), or neither', async () => {
    await queue.add('task.run', {}, { jobId: 'later', delay: 60_000 });
    expect(await backend.promoteDelayed(queue, 'later')).toBe('promoted');
    const held = deferred<void>();
    const worker = startWorker(async (job) => {
      if (job.id === 'busy') await held.promise;
    });
    await queue.add('task.run', {}, { jobId: 'busy' });
    await waitUntil('the job to run', async () => (await queue.getJob('busy'))?.getState(), {
      until: (state) => state === 'active',
    });
    expect(await backend.promoteDelayed(queue, 'busy')).toBe('active');
    held.resolve();
    await waitUntil('the job to finish', async () => (await queue.getJob('busy'))?.getState(), {
      until: (state) => state === 'completed',
    });
    expect(await backend.promoteDelayed(queue, 'busy')).toBe('other');
    await worker.close();
  });

  it('removes a job no worker holds, and never one a worker runs', async () => {
    await queue.add('task.run', {}, { jobId: 'idle', delay: 60_000 });
    expect(await backend.removeJob(queue, 'idle')).toBe(true);
    expect(await queue.getJob('idle')).toBeUndefined();
    expect(await backend.removeJob(queue, 'idle')).toBe(true); // nothing left: done already
    const held = deferred<void>();
    const worker = startWorker(async (job) => {
      if (job.id === 'held') await held.promise;
    });
    await queue.add('task.run', {}, { jobId: 'held' });
    await waitUntil('the job to run', async () => (await queue.getJob('held'))?.getState(), {
      until: (state) => state === 'active',
    });
    expect(await backend.removeJob(queue, 'held')).toBe(false);
    held.resolve();
    await waitUntil('the job to finish', async () => (await queue.getJob('held'))?.getState(), {
      until: (state) => state === 'completed',
    });
    await worker.close();
  });

  it('counts its workers', async () => {
    const worker = startWorker(async () => undefined);
    await worker.waitUntilReady();
    await waitUntil('the worker to be counted', () => queue.getWorkersCount(), { until: (n) => n >= 1 });
    await worker.close();
  });
});

describe('the postgres queue backend, made while Postgres is away', () => {
  let database: { name: string; url: string };
  let proxy: TcpProxy;
  let sql: SqlClient;
  let backend: PostgresQueueBackend;

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const url = new URL(database.url);
    url.host = `127.0.0.1:${proxy.port}`;
    const config = AppConfig.fromEnv({
      DATABASE_URL: url.toString(),
      DATABASE_POOL_SIZE: '2',
      REDIS_URL,
      REDIS_PREFIX: `t${randomBytes(5).toString('hex')}`,
      QUEUE_BACKEND: 'postgres',
    });
    sql = new SqlClient(config, {} as DataSource);
    backend = new PostgresQueueBackend(config, sql);
  });

  afterAll(async () => {
    await proxy?.start();
    await backend?.onApplicationShutdown();
    await sql?.onApplicationShutdown();
    await proxy?.stop();
    if (database) await dropTestDatabase(database.name);
  });

  it('answers once Postgres is back, though its first statements failed', async () => {
    await proxy.stop();
    const queue = backend.createQueue(QueueName.Tasks);
    queue.on('error', () => undefined); // as the platform's queues are (QueueGateway)
    await expect(queue.getJobCounts('waiting')).rejects.toThrow();
    await expect(queue.add('task.run', {}, { jobId: 'while-away' })).rejects.toThrow();

    await proxy.start();
    await queue.add('task.run', {}, { jobId: 'after' });
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    const ran = deferred<string>();
    const worker = backend.createWorker(QueueName.Tasks, async (job) => ran.resolve(job.id!), { concurrency: 1 });
    worker.on('error', () => undefined);
    try {
      expect(await ran.promise).toBe('after');
    } finally {
      await worker.close();
    }
  });
});
