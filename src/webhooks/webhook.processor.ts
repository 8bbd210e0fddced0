import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job, Worker } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { JobName, QueueName } from '../queue/queue.constants';
import { QueueBackend } from '../queue/queue-backend';
import { JobNext, WebhookAttempts } from './webhook-attempts';
import { parseWebhookDeliverData, parseWebhookRetryData } from './webhook-jobs';
import { makeWebhookBackoffStrategy, WebhookAttemptFailed } from './webhook-retry-policy';

/**
 * The webhooks queue's worker (worker role only). It is built at boot from the configuration (WEBHOOK_CONCURRENCY,
 * the backoff reading WEBHOOK_RETRY_DELAYS) on the queue backend in use, and hands each job
 * to WebhookAttempts, turning its answer into what BullMQ understands: wait (the job is delayed, no attempt counted)
 * or retry (the job fails, BullMQ runs it again after the backoff).
 */
@Injectable()
export class WebhookProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private worker?: Worker;

  constructor(
    private readonly config: AppConfig,
    private readonly backend: QueueBackend,
    private readonly attempts: WebhookAttempts,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = this.backend.createWorker(QueueName.Webhooks, (job, token) => this.process(job, token), {
      concurrency: this.config.webhook.concurrency,
      settings: { backoffStrategy: makeWebhookBackoffStrategy(this.config.webhook.retryDelaysMs) },
    });
    // Without a listener BullMQ prints connection errors to stderr; they are expected while its datastore is away.
    this.worker.on('error', (err: Error) => this.logger.warn(`worker: ${err.message}`));
  }

  /** Before the database closes, so the attempts running now are recorded; no new job is taken meanwhile. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }

  async process(job: Job, token?: string): Promise<void> {
    const next =
      job.name === (JobName.WebhookRetry as string)
        ? await this.attempts.sendRetry(parseWebhookRetryData(job.data), job.attemptsMade)
        : await this.attempts.sendFirstAttempts(
            parseWebhookDeliverData(job.data).deliveryId,
            Math.max(0, (job.attemptsStarted ?? 1) - 1),
          );
    await this.follow(next, job, token);
  }

  private async follow(next: JobNext, job: Job, token: string | undefined): Promise<void> {
    switch (next.kind) {
      case 'done':
        return;
      case 'wait':
        // Whole milliseconds: BullMQ on Postgres keeps the time as a bigint.
        await job.moveToDelayed(Math.ceil(next.until), token);
        throw new DelayedError();
      case 'retry':
        throw new WebhookAttemptFailed(next.delayMs, next.error);
    }
  }
}
