import type { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config';
import type { PromoteOutcome, QueueBackend } from './queue-backend';
import { QueueGateway } from './queue.gateway';

/** A gateway whose backend answers `found`, one answer per promote, and counts the promotes. */
function gateway(found: PromoteOutcome[]) {
  const promotes: string[] = [];
  const backend = {
    promoteDelayed: jest.fn(async (_queue: Queue, jobId: string) => {
      promotes.push(jobId);
      return found.shift() ?? 'other';
    }),
  };
  const queue = { name: 'tasks', on: () => undefined } as unknown as Queue;
  const g = new QueueGateway(queue, queue, queue, queue, backend as unknown as QueueBackend, AppConfig.fromEnv({}));
  return { g, promotes };
}

describe('QueueGateway.promoteTaskJob', () => {
  it('promotes once when the job is delayed, or neither delayed nor held', async () => {
    for (const first of ['promoted', 'other'] as const) {
      const { g, promotes } = gateway([first]);
      await g.promoteTaskJob('t1');
      expect(promotes).toEqual(['t1']);
    }
  });

  it('tries again shortly while a worker holds the job (its run may be moving it to delayed)', async () => {
    const { g, promotes } = gateway(['active', 'active', 'promoted']);
    await g.promoteTaskJob('t1');
    expect(promotes).toEqual(['t1', 't1', 't1']);
  });

  it('gives up after a few tries on a job that stays held (a run that is really running)', async () => {
    const { g, promotes } = gateway(['active', 'active', 'active', 'active', 'active', 'active']);
    const started = Date.now();
    await g.promoteTaskJob('t1');
    expect(promotes).toHaveLength(4);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
