import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { QueueName } from '../src/queue/queue.constants';
import { sleep, TestApp } from './support/test-app';

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

      // A second later the counts are read again: a submit shows.
      const before = counts.mock.calls.length;
      const submitted = await t.request('POST', '/api/v1/media/subtitles/generate', { body: { text: 'Counted.' } });
      expect(submitted.status).toBe(202);
      await sleep(1100);
      const fresh = await t.request('GET', '/health', { token: null });
      expect(counts.mock.calls.length).toBe(before + 1);
      expect(fresh.body.queue.queued).toBeGreaterThanOrEqual(1);
    } finally {
      counts.mockRestore();
      workers.mockRestore();
    }
  });
});
