import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';

const QUEUES = ['tasks', 'maintenance', 'webhooks', 'flows'];

describe('queue admin API', () => {
  let api: TestApp;
  let worker: TestApp | undefined;
  let admin: string;
  let database: { name: string; url: string };
  const redisPrefix = `qadmin${process.pid}`;
  const taskIds: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    // Workers off: submitted tasks stay in the queue where the counts can see them.
    api = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'api' } });
    admin = api.token('root', { admin: true });
  });
  afterAll(async () => {
    await worker?.close();
    await api.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('refuses callers without a token (401) and without the admin role or the key scope (403, naming it)', async () => {
    expect((await api.request('GET', '/api/v1/queue/stats', { token: null })).status).toBe(401);
    for (const [method, path, scope] of [
      ['GET', '/api/v1/queue/stats', 'queue:read'],
      ['GET', '/queue/stats', 'queue:read'],
      ['POST', '/api/v1/queue/clean', 'queue:write'],
      ['POST', '/api/v1/queue/tasks/pause', 'queue:write'],
      ['POST', '/api/v1/queue/tasks/resume', 'queue:write'],
    ]) {
      const res = await api.request(method, path, { as: 'mallory', body: method === 'POST' ? {} : undefined });
      expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status: 403, code: 'forbidden' });
      expect(res.body.message).toBe(`this endpoint is for admins and API keys with the scope ${scope}`);
    }
  });

  it('counts submitted tasks: task jobs carry a priority, so BullMQ counts them as prioritized, not waiting', async () => {
    const before = (await api.request('GET', '/api/v1/queue/stats', { token: admin })).body;
    expect(Object.keys(before.queues).sort()).toEqual([...QUEUES].sort());
    for (const name of QUEUES) {
      expect(before.queues[name]).toEqual({
        waiting: expect.any(Number),
        prioritized: expect.any(Number),
        active: expect.any(Number),
        completed: expect.any(Number),
        failed: expect.any(Number),
        delayed: expect.any(Number),
        waiting_children: expect.any(Number),
        paused: false,
      });
    }

    for (let i = 0; i < 3; i++) {
      const res = await api.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 'Hi.' } });
      expect(res.status).toBe(202);
      taskIds.push(res.body.id);
    }

    const after = await api.request('GET', '/api/v1/queue/stats', { token: admin });
    expect(after.status).toBe(200);
    const tasks = after.body.queues.tasks;
    expect(tasks.prioritized - before.queues.tasks.prioritized).toBe(3);
    expect(tasks.waiting).toBe(before.queues.tasks.waiting);
    expect(tasks.active).toBe(0);
    const sum = (field: string) => QUEUES.reduce((n, q) => n + after.body.queues[q][field], 0);
    for (const field of ['waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed']) {
      expect(after.body.totals[field]).toBe(sum(field));
    }
    expect(after.body.totals.paused).toBe(0);

    // The orchestrator of the sources served the same at /queue/stats.
    const legacy = await api.request('GET', '/queue/stats', { token: admin });
    expect(legacy.status).toBe(200);
    expect(legacy.body.queues.tasks.prioritized).toBe(tasks.prioritized);
  });

  it('pauses and resumes a queue; an unknown queue is 404 naming the known ones', async () => {
    const paused = await api.request('POST', '/api/v1/queue/webhooks/pause', { token: admin });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ name: 'webhooks', paused: true });
    let stats = (await api.request('GET', '/api/v1/queue/stats', { token: admin })).body;
    expect(stats.queues.webhooks.paused).toBe(true);
    expect(stats.queues.tasks.paused).toBe(false);
    expect(stats.totals.paused).toBe(1);

    const resumed = await api.request('POST', '/api/v1/queue/webhooks/resume', { token: admin });
    expect(resumed.status).toBe(200);
    expect(resumed.body.paused).toBe(false);
    stats = (await api.request('GET', '/api/v1/queue/stats', { token: admin })).body;
    expect(stats.queues.webhooks.paused).toBe(false);
    expect(stats.totals.paused).toBe(0);

    const unknown = await api.request('POST', '/api/v1/queue/emails/pause', { token: admin });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain('emails');
    for (const name of QUEUES) expect(unknown.body.message).toContain(name);
  });

  it('validates the clean body, naming the field; no body means the defaults', async () => {
    for (const [body, field] of [
      [{ grace_ms: -1 }, 'grace_ms'],
      [{ grace_ms: 'soon' }, 'grace_ms'],
      [{ status: 'active' }, 'status'],
      [{ limit: 0 }, 'limit'],
      [{ everything: true }, 'everything'],
    ] as const) {
      const res = await api.request('POST', '/api/v1/queue/clean', { token: admin, body });
      expect({ field, status: res.status }).toEqual({ field, status: 400 });
      expect(res.body.message).toContain(field);
    }
    // No body at all: the defaults (grace 0, both statuses). Nothing has finished yet, so nothing goes.
    const bare = await api.request('POST', '/api/v1/queue/clean', { token: admin });
    expect(bare.status).toBe(200);
    expect(bare.body).toMatchObject({ grace_ms: 0, statuses: ['completed', 'failed'], total_removed: 0 });
  });

  it('clean removes completed jobs from Redis and leaves the task rows', async () => {
    worker = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'worker' } });
    for (const id of taskIds) await api.waitForTask(id, (t) => t.status === 'completed');
    await worker.close();
    worker = undefined;

    const before = (await api.request('GET', '/api/v1/queue/stats', { token: admin })).body.queues.tasks;
    expect(before.completed).toBeGreaterThanOrEqual(3);
    expect(before.prioritized).toBe(0);

    // A grace longer than the jobs' age keeps them.
    const kept = await api.request('POST', '/api/v1/queue/clean', { token: admin, body: { grace_ms: 3_600_000 } });
    expect(kept.status).toBe(200);
    expect(kept.body.removed.tasks).toEqual({ completed: 0, failed: 0 });

    const res = await api.request('POST', '/api/v1/queue/clean', { token: admin, body: { status: 'completed' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ grace_ms: 0, statuses: ['completed'] });
    expect(res.body.removed.tasks.completed).toBe(before.completed);
    expect(res.body.total_removed).toBeGreaterThanOrEqual(before.completed);

    const after = (await api.request('GET', '/api/v1/queue/stats', { token: admin })).body.queues.tasks;
    expect(after.completed).toBe(0);
    for (const id of taskIds) {
      const task = await api.request('GET', `/api/v1/media/tasks/${id}`);
      expect(task.status).toBe(200);
      expect(task.body.status).toBe('completed');
    }
  });
});
