import { DelayedError, Job } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { JobName } from '../queue/queue.constants';
import type { QueueBackend } from '../queue/queue-backend';
import type { JobNext, WebhookAttempts } from './webhook-attempts';
import { WebhookAttemptFailed } from './webhook-retry-policy';
import { WebhookProcessor } from './webhook.processor';

const DELIVERY = '11111111-1111-4111-8111-111111111111';

function setup(next: JobNext) {
  const attempts = {
    sendFirstAttempts: jest.fn(async () => next),
    sendRetry: jest.fn(async () => next),
  };
  const processor = new WebhookProcessor(
    AppConfig.fromEnv({}),
    {} as QueueBackend, // process() alone is under test: no worker is built
    attempts as unknown as WebhookAttempts,
  );
  const job = (name: string, data: unknown, over: Partial<Job> = {}) =>
    ({
      name,
      data,
      attemptsMade: 0,
      attemptsStarted: 1,
      moveToDelayed: jest.fn(async () => undefined),
      ...over,
    }) as unknown as Job & { moveToDelayed: jest.Mock };
  return { processor, attempts, job };
}

describe('WebhookProcessor', () => {
  it('hands a webhook.deliver job to the first attempts, counting its earlier looks', async () => {
    const t = setup({ kind: 'done' });
    await t.processor.process(t.job(JobName.WebhookDeliver, { deliveryId: DELIVERY }, { attemptsStarted: 3 }), 'tok');
    expect(t.attempts.sendFirstAttempts).toHaveBeenCalledWith(DELIVERY, 2);
    expect(t.attempts.sendRetry).not.toHaveBeenCalled();
  });

  it("hands a webhook.retry job to the retries with the job's failed runs so far", async () => {
    const t = setup({ kind: 'done' });
    await t.processor.process(t.job(JobName.WebhookRetry, { deliveryId: DELIVERY, attempts: 2 }, { attemptsMade: 1 }));
    expect(t.attempts.sendRetry).toHaveBeenCalledWith({ deliveryId: DELIVERY, attempts: 2 }, 1);
  });

  it('moves a job that must wait to the delayed set, without failing it', async () => {
    const t = setup({ kind: 'wait', until: 1_800_000_000_000 });
    const job = t.job(JobName.WebhookRetry, { deliveryId: DELIVERY, attempts: 1 });
    await expect(t.processor.process(job, 'tok')).rejects.toBeInstanceOf(DelayedError);
    expect(job.moveToDelayed).toHaveBeenCalledWith(1_800_000_000_000, 'tok');
  });

  it('fails a run whose attempt failed with the delay BullMQ must wait before the next', async () => {
    const t = setup({ kind: 'retry', delayMs: 4321, error: 'HTTP 500' });
    const job = t.job(JobName.WebhookRetry, { deliveryId: DELIVERY, attempts: 1 });
    const failure = await t.processor.process(job).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WebhookAttemptFailed);
    expect(failure).toMatchObject({ delayMs: 4321, message: 'HTTP 500' });
    expect(job.moveToDelayed).not.toHaveBeenCalled();
  });

  it('refuses job data that is not a delivery id', async () => {
    const t = setup({ kind: 'done' });
    await expect(t.processor.process(t.job(JobName.WebhookDeliver, { deliveryId: 'x' }))).rejects.toThrow(
      /invalid webhook.deliver job data/,
    );
    await expect(
      t.processor.process(t.job(JobName.WebhookRetry, { deliveryId: DELIVERY, attempts: 0 })),
    ).rejects.toThrow(/invalid webhook.retry job data/);
  });
});
