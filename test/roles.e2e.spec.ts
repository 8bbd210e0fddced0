import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { HealthService } from '../src/health/health.service';
import { QueueName } from '../src/queue/queue.constants';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';

describe('process roles sharing one Postgres and one Redis', () => {
  let api: TestApp;
  let worker: TestApp;
  const redisPrefix = `roles${process.pid}`;
  let database: { name: string; url: string };

  beforeAll(async () => {
    database = await createTestDatabase();
    api = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await api.close();
    await worker?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('an API process alone accepts tasks but runs none; a worker process runs them and serves no task routes', async () => {
    const res = await api.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Made by the API.' } });
    expect(res.status).toBe(202);
    // Its job waits in the queue, and no process of the deployment has a worker to take it.
    const queue = api.app.get<Queue>(getQueueToken(QueueName.Tasks));
    const state = await waitUntil('the task job in the queue', async () =>
      (await queue.getJob(res.body.id))?.getState(),
    );
    expect(['waiting', 'prioritized']).toContain(state);
    expect(await queue.getWorkersCount()).toBe(0);
    expect((await api.request('GET', `${BASE}/tasks/${res.body.id}`)).body.status).toBe('queued');

    worker = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'worker' } });
    const done = await api.waitForTask(res.body.id, (x) => x.status === 'completed');
    expect(done.output.content).toContain('Made by the API.');

    expect((await worker.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'x' } })).status).toBe(404);
    // The task's row reads `completed` a moment before its BullMQ job leaves `active`, and health's queue counts are
    // kept for a second: wait for the job to be counted done.
    const health = await waitUntil(
      'the worker to report its slots free',
      async () => (await worker.request('GET', '/health', { token: null })).body,
      { until: (body) => body.queue?.activeWorkers === 0, intervalMs: 200 },
    );
    expect(health).toMatchObject({
      status: 'healthy',
      role: 'worker',
      queue: { workers: 1, availableWorkers: 4, activeWorkers: 0 },
    });
    expect((await worker.request('GET', '/docs-json', { token: null })).status).toBe(404);
  });

  it("health reports the contract's queue counts, and echoes a request id", async () => {
    const res = await api.request('GET', '/health', { token: null, headers: { 'x-request-id': 'trace-123' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-123');
    expect(res.body.queue).toEqual(
      expect.objectContaining({
        queued: expect.any(Number),
        processing: expect.any(Number),
        completed: expect.any(Number),
        activeWorkers: expect.any(Number),
        availableWorkers: expect.any(Number),
      }),
    );
    const generated = await api.request('GET', '/health/live', { token: null });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('readiness turns 503 once shutdown begins', async () => {
    expect((await api.request('GET', '/health/ready', { token: null })).status).toBe(200);
    api.app.get(HealthService).beforeApplicationShutdown();
    const ready = await api.request('GET', '/health/ready', { token: null });
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('shutting_down');
  });
});
