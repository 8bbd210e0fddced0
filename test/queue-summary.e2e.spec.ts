import { TestApp } from './support/test-app';

const QUEUES = ['tasks', 'maintenance', 'webhooks', 'flows'];
const COUNTS = ['waiting', 'active', 'completed', 'failed', 'delayed'];

describe("the chatbot system's queue routes (/api/queue/stats, /api/queue/clean)", () => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await TestApp.start();
    admin = t.token('root', { admin: true });
  });
  afterAll(async () => {
    await t.close();
  });

  it('are for admins only: 401 without a token, 403 for users and API keys whatever their scopes', async () => {
    const key = (
      await t.request('POST', '/api/v1/api-keys', {
        token: admin,
        body: { owner: 'ops', name: 'dash', scopes: ['queue:read', 'queue:write'] },
      })
    ).body.key as string;
    for (const [method, path] of [
      ['GET', '/api/queue/stats'],
      ['POST', '/api/queue/clean'],
    ]) {
      const body = method === 'POST' ? {} : undefined;
      expect((await t.request(method, path, { token: null, body })).status).toBe(401);
      const user = await t.request(method, path, { as: 'mallory', body });
      expect(user.status).toBe(403);
      expect(user.body.message).toBe('this endpoint is for admins');
      const withKey = await t.request(method, path, { token: null, headers: { 'x-api-key': key }, body });
      expect(withKey.status).toBe(403);
    }
  });

  it('counts each queue in five states, lists running jobs, and sums them up', async () => {
    // One task done, one waiting for its run_at (delayed).
    const done = await t.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 'Done soon.' } });
    await t.waitForTask(done.body.id, (task) => task.status === 'completed');
    await t.waitForTaskJobEnded(done.body.id);
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const res0 = await t.request('POST', '/api/v1/media/subtitles/generate', {
      body: { text: 'Later.', run_at: later },
    });
    expect(res0.status).toBe(202);

    const res = await t.request('GET', '/api/queue/stats', { token: admin });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('success');
    expect(Object.keys(res.body.data).sort()).toEqual(['activeJobs', 'queues', 'summary']);
    expect(Object.keys(res.body.data.queues).sort()).toEqual([...QUEUES].sort());
    for (const name of QUEUES) {
      expect(Object.keys(res.body.data.queues[name]).sort()).toEqual([...COUNTS].sort());
    }
    expect(res.body.data.queues.tasks).toMatchObject({ completed: 1, delayed: 1, failed: 0 });
    expect(Array.isArray(res.body.data.activeJobs)).toBe(true);
    const summary = res.body.data.summary;
    for (const count of COUNTS) {
      expect(summary[count]).toBe(QUEUES.reduce((sum, q) => sum + res.body.data.queues[q][count], 0));
    }
    expect(summary.total).toBe(COUNTS.reduce((sum, c) => sum + summary[c], 0));
  });

  it('cleans finished jobs of the states asked (400 for others) and answers how many it removed', async () => {
    const bad = await t.request('POST', '/api/queue/clean', { token: admin, body: { states: ['active'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/states must hold only completed or failed/);
    const negative = await t.request('POST', '/api/queue/clean', { token: admin, body: { grace_ms: -1 } });
    expect(negative.status).toBe(400);

    const before = (await t.request('GET', '/api/queue/stats', { token: admin })).body.data.queues.tasks;
    expect(before.completed).toBeGreaterThanOrEqual(1);
    // A grace longer than the jobs' age keeps them.
    const kept = await t.request('POST', '/api/queue/clean', { token: admin, body: { grace_ms: 3_600_000 } });
    expect(kept.body).toEqual({ status: 'success', data: { removed: 0 } });

    const res = await t.request('POST', '/api/queue/clean', { token: admin, body: { states: ['completed'] } });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('success');
    expect(res.body.data.removed).toBeGreaterThanOrEqual(before.completed);
    const after = (await t.request('GET', '/api/queue/stats', { token: admin })).body.data.queues.tasks;
    expect(after).toMatchObject({ completed: 0, delayed: 1 });
  });
});
