import type { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config';
import type { PromoteOutcome, QueueBackend } from './queue-backend';
import { QueueGateway } from './queue.gateway';
import { QueueName } from './queue.constants';

/** A gateway whose backend answers `found`, one answer per promote, and counts the promotes. */
function gateway(found: PromoteOutcome[]) {
  const promotes: string[] = [];
  const backend = {
    promoteDelayed: jest.fn(async (queue: Queue, jobId: string) => {
      promotes.push(queue.name === 'tasks' ? jobId : `${queue.name}:${jobId}`);
      return found.shift() ?? 'other';
    }),
  };
  const queue = (name: string) => ({ name, on: () => undefined }) as unknown as Queue;
  const g = new QueueGateway(
    queue('tasks'),
    queue('maintenance'),
    queue('webhooks'),
    queue('flows'),
    backend as unknown as QueueBackend,
    AppConfig.fromEnv({}),
  );
  return { g, promotes };
}

describe('QueueGateway.promoteTaskJob and promoteJob', () => {
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

  it('wakes a flow step the same way, on the flows queue', async () => {
    const { g, promotes } = gateway(['active', 'promoted']);
    await g.promoteJob(QueueName.Flows, 'run:step:0');
    expect(promotes).toEqual(['flows:run:step:0', 'flows:run:step:0']);
  });
});
