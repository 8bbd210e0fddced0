import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { QueueName } from '../src/queue/queue.constants';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

describe('GET /health', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('reads the queue counts from Redis at most once a second per process, however often it is called', async () => {
    const queue = t.app.get<Queue>(getQueueToken(QueueName.Tasks));
    const counts = jest.spyOn(queue, 'getJobCounts');
    const workers = jest.spyOn(queue, 'getWorkersCount');
    try {
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 20 }, () => t.request('GET', '/health', { token: null })));
      for (let i = 0; i < 10; i++) answers.push(await t.request('GET', '/health', { token: null }));
      expect(answers.every((a) => a.status === 200 && typeof a.body.queue.queued === 'number')).toBe(true);
      // Once, or once more for each second the thirty calls took on a busy machine.
      const reads = 1 + Math.floor((Date.now() - started) / 1000);
      expect(counts.mock.calls.length).toBeLessThanOrEqual(reads);
      expect(workers.mock.calls.length).toBeLessThanOrEqual(reads);

      // A second later the counts are read again (once, however often they are asked for meanwhile): a submit shows.
      const before = counts.mock.calls.length;
      const submitted = await t.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 'Counted.' } });
      expect(submitted.status).toBe(202);
      const fresh = await waitUntil(
        'the counts to be read again',
        async () => ({ res: await t.request('GET', '/health', { token: null }), reads: counts.mock.calls.length }),
        { timeoutMs: 5000, intervalMs: 50, until: ({ reads }) => reads > before },
      );
      expect(fresh.reads).toBe(before + 1);
      expect(fresh.res.body.queue.queued).toBeGreaterThanOrEqual(1);
    } finally {
      counts.mockRestore();
      workers.mockRestore();
    }
  });
});
