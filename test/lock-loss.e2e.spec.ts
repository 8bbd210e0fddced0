import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import Redis from 'ioredis';
import { QueueName } from '../src/queue/queue.constants';
import { TaskType } from '../src/tasks/task.enums';
import { REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { ScriptedProvider } from './support/scripted-provider';
import { SubtitleEngineProvider, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

describe('a worker that loses the lock of a running task', () => {
  // The first call would take 20 s; the run after the lock is lost answers at once.
  const images = new ScriptedProvider('slow-images', [TaskType.ImageGeneration], [{ delayMs: 20_000 }, 'ok']);
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [images, new SubtitleEngineProvider()],
      env: { WORKER_LOCK_MS: '1000' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('stops its run at once (the provider call is aborted), and the task runs again to one completion', async () => {
    const res = await t.request('POST', '/api/v1/media/images/generate', { body: { prompt: 'a lighthouse' } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await waitUntil('the provider call', () => images.calls.length > 0);
    expect(images.calls).toHaveLength(1);

    // What a stalled event loop or a long Redis outage leaves: the lock lapsed, so the job is no longer this run's.
    const queue = t.app.get<Queue>(getQueueToken(QueueName.Tasks));
    if (TEST_QUEUE_BACKEND === 'postgres') {
      const [taken] = await t.dataSource.query<[{ id: string }[], number]>(
        `UPDATE bullmq.job SET lock_token = NULL, locked_until_ms = 0
          WHERE queue = $1 AND id = $2 AND state = 'active' RETURNING id`,
        [queue.name, id],
      );
      expect(taken).toHaveLength(1);
    } else {
      const redis = new Redis(REDIS_URL);
      try {
        expect(await redis.del(`${queue.toKey(id)}:lock`)).toBe(1);
      } finally {
        redis.disconnect();
      }
    }
    const lost = Date.now();

    const task = await t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 15_000);
    expect(task.status).toBe('completed');
    expect(task.output.call).toBe(2);
    // The first call was stopped when the lock was found lost (a renewal comes every half lock), not run to its end.
    expect(images.aborts).toHaveLength(1);
    expect(images.aborts[0].reason).toBe('lock_lost');
    expect(images.aborts[0].at - lost).toBeLessThan(5000);
    expect(images.calls).toHaveLength(2);
    const [row] = await t.dataSource.query(`SELECT event_seq, attempts FROM tasks WHERE id = $1`, [id]);
    expect(row.event_seq).toBe(3); // created, started, completed: one completion
  }, 30_000);
});
