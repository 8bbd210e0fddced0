import { QueueName } from '../src/queue/queue.constants';
import { TaskEventType, TaskStatus, TaskType } from '../src/tasks/task.enums';
import { Client } from 'pg';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { factory } from './support/factories';
import { ScriptedProvider } from './support/scripted-provider';
import { TcpProxy } from './support/tcp-proxy';
import { deleteRedisKeys, loseQueueStore, SubtitleEngineProvider, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';

describe('recovery: the reconciler', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { RECONCILE_INTERVAL_MS: '300', RECONCILE_GRACE_MS: '200' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('completes a task whose process crashed between the insert and the enqueue', async () => {
    // The row exists, no job was ever added: exactly what a crash after INSERT leaves behind.
    const orphan = await factory.task(t.dataSource, { status: TaskStatus.Queued });
    expect(await t.app.get(TestApp.queueGatewayToken()).getTaskJob(orphan.id)).toBeUndefined();
    const task = await t.waitForTask(orphan.id, (x) => x.status === 'completed', 10000);
    expect(task.output.format).toBe('srt');
    expect(task.attempts).toBe(1);
  });

  it('puts back a processing task whose worker died without its job', async () => {
    const orphan = await factory.task(t.dataSource, {
      status: TaskStatus.Processing,
      attempts: 1,
      startedAt: new Date(Date.now() - 1000),
      eventSeq: 2,
    });
    const task = await t.waitForTask(orphan.id, (x) => x.status === 'completed', 10000);
    expect(task.attempts).toBe(2);
  });

  it('completes queued tasks after the queue store lost everything (Redis flushed or replaced)', async () => {
    const gateway = t.app.get(TestApp.queueGatewayToken());
    await gateway.queue(QueueName.Tasks).pause();
    const res = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Survives a flush.' } });
    expect(res.status).toBe(202);
    expect(await gateway.getTaskJob(res.body.id)).toBeDefined();
    // What FLUSHALL does to this deployment: jobs, the paused flag and the reconciler's scheduler are all gone.
    // (Not asserting the job is gone afterwards: the reconciler may already have put it back, which is the point.)
    expect(await loseQueueStore(t)).toBeGreaterThan(0);
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed', 10000);
    expect(task.output.content).toContain('Survives a flush.');
    expect(t.eventsOf(res.body.id).map((e) => e.type)).toEqual([
      TaskEventType.Created,
      TaskEventType.Started,
      TaskEventType.Completed,
    ]);
  });
});

describe('recovery: Postgres and Redis outages', () => {
  let t: TestApp;
  let redisProxy: TcpProxy;
  let pgProxy: TcpProxy;

  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    redisProxy = await new TcpProxy(redis.hostname, Number(redis.port || 6379)).start();
    const db = await createTestDatabase();
    const pg = new URL(db.url);
    pgProxy = await new TcpProxy(pg.hostname, Number(pg.port || 5432)).start();
    const viaProxy = new URL(db.url);
    viaProxy.port = String(pgProxy.port);
    t = await TestApp.start({
      database: { name: db.name, url: viaProxy.toString() },
      env: {
        REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
        RECONCILE_INTERVAL_MS: '300',
        RECONCILE_GRACE_MS: '200',
      },
    });
  });
  afterAll(async () => {
    await redisProxy.start().catch(() => undefined);
    await pgProxy.start().catch(() => undefined);
    await t.close();
    await redisProxy.stop();
    await pgProxy.stop();
    await dropTestDatabase(t.database.name);
    await deleteRedisKeys(t.redisPrefix);
  });

  function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10000): Promise<T> {
    return waitUntil('the answer expected', fn, { timeoutMs, intervalMs: 100, until: ok });
  }

  if (TEST_QUEUE_BACKEND === 'redis') {
    it('Redis down: submit answers 503 with Retry-After, health 503; both recover by themselves', async () => {
      await redisProxy.stop();
      const refused = await eventually(
        () => t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'During the outage.' } }),
        (r) => r.status === 503,
      );
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.body).toMatchObject({ code: 'dependency_unavailable', dependency: 'redis' });
      const health = await t.request('GET', '/health', { token: null });
      expect(health.status).toBe(503);
      expect(health.body.status).toBe('unhealthy');
      // The public answer names the dependency that is down, never its address or the error's text.
      expect(health.body.checks).toEqual({ postgres: { status: 'up' }, redis: { status: 'down' } });
      expect(JSON.stringify(health.body)).not.toContain(String(redisProxy.port));
      expect((await t.request('GET', '/health/live', { token: null })).status).toBe(200);
      // Reads do not need Redis.
      expect((await t.request('GET', `${BASE}/tasks`)).status).toBe(200);
      const rows = await t.dataSource.query(
        `SELECT count(*)::int AS n FROM tasks WHERE input->>'text' = 'During the outage.'`,
      );
      expect(rows[0].n).toBe(0);

      await redisProxy.start();
      const accepted = await eventually(
        () => t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'After the outage.' } }),
        (r) => r.status === 202,
      );
      expect(accepted.status).toBe(202);
      const task = await t.waitForTask(accepted.body.id, (x) => x.status === 'completed', 15000);
      expect(task.output.cue_count).toBe(1);
      expect(
        (
          await eventually(
            () => t.request('GET', '/health', { token: null }),
            (r) => r.status === 200,
          )
        ).status,
      ).toBe(200);
    });
  } else {
    it('Redis down, with the queues on Postgres: nothing notices — submit, run and health go on as before', async () => {
      await redisProxy.stop();
      const accepted = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'During the outage.' } });
      expect(accepted.status).toBe(202);
      const task = await t.waitForTask(accepted.body.id, (x) => x.status === 'completed', 15000);
      expect(task.output.cue_count).toBe(1);
      const health = await t.request('GET', '/health', { token: null });
      expect(health.status).toBe(200);
      expect(health.body.checks).toEqual({ postgres: { status: 'up' } });
      await redisProxy.start();
    });
  }

  it('Postgres down: submit and reads answer 503 with Retry-After, health 503; service resumes when it returns', async () => {
    await pgProxy.stop();
    const submit = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'No database.' } });
    expect(submit.status).toBe(503);
    expect(submit.headers.get('retry-after')).toBe('5');
    expect(submit.body.code).toBe('dependency_unavailable');
    const read = await t.request('GET', `${BASE}/tasks`);
    expect([read.status, read.body]).toEqual([503, expect.anything()]);
    const health = await t.request('GET', '/health', { token: null });
    expect(health.status).toBe(503);
    // Redis is a dependency (and checked) only when the queues live there.
    const redisCheck = TEST_QUEUE_BACKEND === 'redis' ? { redis: { status: 'up' } } : {};
    expect(health.body.checks).toEqual({ postgres: { status: 'down' }, ...redisCheck });
    expect(JSON.stringify(health.body)).not.toMatch(new RegExp(`127\\.0\\.0\\.1|${pgProxy.port}|ECONNREFUSED`));

    await pgProxy.start();
    const accepted = await eventually(
      () => t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Database is back.' } }),
      (r) => r.status === 202,
    );
    expect(accepted.status).toBe(202);
    const task = await t.waitForTask(accepted.body.id, (x) => x.status === 'completed', 15000);
    expect(task.status).toBe('completed');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM lets a running task finish before the worker closes', async () => {
    const slow = new ScriptedProvider('slow-images', [TaskType.ImageGeneration], [{ delayMs: 800 }]);
    const t = await TestApp.start({ providers: [slow, new SubtitleEngineProvider()] });
    let closed = false;
    try {
      const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'slow' } });
      await t.waitForTask(res.body.id, (x) => x.status === 'processing');
      // app.close() is what Nest's shutdown hooks run on SIGTERM.
      await t.app.close();
      closed = true;
      // The app is gone, its worker with it: the row says completed only if the run finished before the close did.
      const client = new Client({ connectionString: t.database.url });
      await client.connect();
      const { rows } = await client.query<{ status: string }>(`SELECT status FROM tasks WHERE id = $1`, [res.body.id]);
      await client.end();
      expect(rows[0].status).toBe('completed');
    } finally {
      if (!closed) await t.app.close();
      await dropTestDatabase(t.database.name);
      await deleteRedisKeys(t.redisPrefix);
    }
  });
});
