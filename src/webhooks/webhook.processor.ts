import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { parseWebhookDeliverData } from '../queue/job.types';
import { JobName, QueueName } from '../queue/queue.constants';
import { WebhookQueue } from '../queue/webhook-queue.service';
import { WebhookHostLimit } from './webhook-host-limit';
import { AttemptOutcome, WebhookSender } from './webhook-sender';
import { signatureHeaders, unsignedHeaders } from './webhook-signature';
import {
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRow,
  WebhookDeliveriesRepository,
} from './webhook-deliveries.repository';

/** A receiver's Retry-After is honoured up to this. */
const MAX_RETRY_AFTER_MS = 3600_000;
const LOOK_AGAIN_MS = { first: 20, max: 1000 };
/** A claim outlives the attempt it covers by this (then a dead sender's delivery may be taken over). */
const LEASE_MARGIN_MS = 5000;

/**
 * Sends webhook deliveries (DESIGN decision 8). The row is the record: each attempt is appended to it.
 * First attempts: the deliveries of one task to one URL form a line, sent in sequence order by whichever job holds
 * the line's head (a lease in the row); a job that finds the head leased leaves it to that sender, which goes on down
 * the line. Retries are jobs of their own, delayed by WEBHOOK_RETRY_DELAYS (with jitter) or the receiver's
 * Retry-After, so they never hold the line; a delivery out of retries, or answered 410 Gone, is a dead letter.
 * Attempts to a host past WEBHOOK_HOST_RATE_PER_SECOND wait for a later second, unattempted.
 */
@Processor(QueueName.Webhooks, { autorun: false })
export class WebhookProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger('Webhooks');
  private readonly leaseMs: number;

  constructor(
    private readonly config: AppConfig,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly sender: WebhookSender,
    private readonly queue: WebhookQueue,
    private readonly metrics: MetricsService,
    private readonly hostLimit: WebhookHostLimit,
  ) {
    super();
    this.leaseMs = config.webhook.timeoutMs + LEASE_MARGIN_MS;
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.webhook.concurrency;
    void this.worker.run().catch((err: Error) => this.logger.error(`webhook worker stopped: ${err.message}`));
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn(`worker: ${err.message}`);
  }

  async process(job: Job, token?: string): Promise<void> {
    const { deliveryId } = parseWebhookDeliverData(job.data);
    if (job.name === (JobName.WebhookRetry as string)) {
      const claimed = await this.deliveries.claimRetry(deliveryId, this.leaseMs);
      if (claimed) await this.attempt(claimed, job, token);
      return;
    }
    // A first attempt: send the line's head, then each next one the record hands over, until the line is empty.
    const { claimed, ownWaiting } = await this.deliveries.claimNextFirst(deliveryId, this.leaseMs);
    if (!claimed && ownWaiting) return this.lookAgainLater(job, token);
    let next = claimed;
    while (next) next = await this.attempt(next, job, token);
  }

  /**
   * This delivery waits behind a head another sender holds. That sender normally takes it next; in case it looked
   * down the line before this delivery was written, look again shortly (20 ms, doubling up to 1 s; no slot held).
   */
  private async lookAgainLater(job: Job, token: string | undefined): Promise<never> {
    const looks = Math.max(0, (job.attemptsStarted ?? 1) - 1);
    await job.moveToDelayed(Date.now() + Math.min(LOOK_AGAIN_MS.max, LOOK_AGAIN_MS.first * 2 ** looks), token);
    throw new DelayedError();
  }

  /**
   * One attempt: sign, send, record; a failure with retries left gets its retry job. Answers the line's next. Over
   * its host's rate, no attempt is made: the job comes back later (see postpone).
   */
  private async attempt(
    { delivery, taskSecret }: ClaimedDelivery,
    job: Job,
    token: string | undefined,
  ): Promise<ClaimedDelivery | null> {
    const headers = this.sign(delivery, taskSecret);
    if (typeof headers !== 'string') {
      const waitMs = await this.hostLimit.take(delivery.url);
      if (waitMs > 0) return this.postpone(delivery, job, token, waitMs);
    }
    const outcome: AttemptOutcome =
      typeof headers === 'string'
        ? { ok: false, statusCode: null, durationMs: 0, error: headers, responseExcerpt: null, gone: true }
        : await this.sender.send(delivery.url, headers, delivery.body);
    const record = this.decide(outcome, delivery.roundAttempts + 1);
    this.metrics.countWebhookDelivery(record.status);
    const next = await this.deliveries.recordAttempt(delivery.id, record, this.leaseMs);
    const log = { deliveryId: delivery.id, taskId: delivery.taskId, attempt: delivery.attempts + 1 };
    if (record.status === 'failed') {
      this.logger.warn(log, `webhook attempt failed, will retry: ${outcome.error}`);
      // If this add is lost, the reconciler makes the job once the attempt is overdue.
      await this.queue
        .addRetry(delivery.id, delivery.attempts + 1, record.nextAttemptAt!.getTime() - Date.now())
        .catch((err: Error) => this.logger.warn(log, `retry left to the reconciler: ${err.message}`));
    } else if (record.status === 'dead') {
      this.logger.warn(log, `webhook dead-lettered: ${outcome.error}`);
    }
    return next;
  }

  /**
   * The delivery's host has had its WEBHOOK_HOST_RATE_PER_SECOND: the delivery is given back unattempted (nothing
   * recorded, no attempt counted) and this job waits until the host has room, holding no slot. A first attempt keeps
   * its line's order: it is still the line's head, and only the head is ever sent.
   */
  private async postpone(delivery: DeliveryRow, job: Job, token: string | undefined, waitMs: number): Promise<never> {
    const at = Date.now() + waitMs;
    await this.deliveries.release(delivery.id, new Date(at));
    await job.moveToDelayed(at, token);
    throw new DelayedError();
  }

  /**
   * The attempt's signature headers, or why none can be made: then the delivery is a dead letter at once (no retry
   * would sign it), with the reason recorded as its attempt, instead of a row that stays pending forever.
   */
  private sign(delivery: DeliveryRow, taskSecret: string | null): Record<string, string> | string {
    const { secret: deploymentSecret, requireSignature } = this.config.webhook;
    const secret = taskSecret ?? deploymentSecret;
    const message = { id: delivery.id, body: delivery.body, at: new Date(), event: delivery.eventType };
    // WEBHOOK_REQUIRE_SIGNATURE=false: no secret anywhere, so the delivery goes out unsigned.
    if (!secret && !requireSignature) return unsignedHeaders(message);
    // Submit refuses a webhook_url without a secret to sign with; WEBHOOK_SECRET may have been removed since.
    if (!secret) return 'no webhook secret to sign with (set WEBHOOK_SECRET)';
    try {
      return signatureHeaders(secret, message);
    } catch (err) {
      // A secret stored before secrets were checked at submit. The message never quotes the secret.
      return `the webhook secret cannot sign: ${(err as Error).message}`;
    }
  }

  /** Delivered, retried later, or dead: the outcome of attempt `round` of this round of retries. */
  private decide(outcome: AttemptOutcome, round: number): AttemptRecord {
    const attempt = {
      at: new Date().toISOString(),
      status_code: outcome.statusCode,
      duration_ms: outcome.durationMs,
      error: outcome.error,
      response_excerpt: outcome.responseExcerpt,
    };
    if (outcome.ok) return { attempt, status: 'delivered', nextAttemptAt: null };
    const { maxRetries, retryDelaysMs } = this.config.webhook;
    if (outcome.gone || round > maxRetries) return { attempt, status: 'dead', nextAttemptAt: null };
    const base = retryDelaysMs[Math.min(round - 1, retryDelaysMs.length - 1)];
    const delay =
      outcome.retryAfterMs !== undefined
        ? Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS)
        : Math.round(base * (0.8 + Math.random() * 0.4));
    return { attempt, status: 'failed', nextAttemptAt: new Date(Date.now() + delay) };
  }
}
