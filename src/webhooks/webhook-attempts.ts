import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import {
  ClaimedDelivery,
  DeliveryRow,
  DeliveryStatus,
  WebhookDeliveriesRepository,
} from './webhook-deliveries.repository';
import { WebhookHostLimit } from './webhook-host-limit';
import { WebhookRetryData } from './webhook-jobs';
import { WebhookQueue } from './webhook-queue.service';
import { recordOf } from './webhook-retry-policy';
import { AttemptOutcome, WebhookSender } from './webhook-sender';
import { signatureHeaders, unsignedHeaders } from './webhook-signature';

/** How long a delivery waiting behind one another sender holds waits before it looks again: 20 ms, doubling to 1 s. */
const LOOK_AGAIN_MS = { first: 20, max: 1000 };
/** A claim outlives the attempt it covers by this (then a dead sender's delivery may be taken over). */
const LEASE_MARGIN_MS = 5000;

/** What the job that asked for attempts does next. */
export type JobNext =
  /** Nothing left for this job. */
  | { kind: 'done' }
  /**
   * Run this job again at `until` (ms since the epoch); nothing was attempted, no attempt is counted. `behind`: the
   * delivery another sender holds ahead of this one (see `waitBehind`).
   */
  | { kind: 'wait'; until: number; behind?: string }
  /** The attempt failed and was recorded: BullMQ runs the job again after `delayMs`. */
  | { kind: 'retry'; delayMs: number; error: string };

/** An attempt made and recorded (after a first attempt, with the next one of its task and URL, claimed), or put off. */
type Attempted =
  | {
      kind: 'recorded';
      status: DeliveryStatus;
      nextAttemptAt: Date | null;
      error: string | null;
      next: ClaimedDelivery | null;
    }
  | { kind: 'postponed'; until: number };

/**
 * Delivery attempts (DESIGN decision 8): claim a row, sign, send, record the attempt in the row, decide what follows.
 *
 * First attempts: the deliveries of one task to one URL go out in sequence order. The job of any of them sends the
 * first delivery still waiting for its first attempt (claimed with a lease in its row), then the next one, which the
 * statement recording the attempt claims, until none is left; a job that finds that delivery leased leaves it to the
 * sender holding it. A first attempt that fails gets a retry job; the next delivery goes out without waiting for it.
 *
 * Retries and replays: one job per round of attempts, which BullMQ runs again after each failure, after the delay
 * the row records (WEBHOOK_RETRY_DELAYS with jitter, or the receiver's Retry-After); the row counts the round's
 * attempts, and after the last one, or a 410 Gone, the delivery is a dead letter.
 *
 * Over WEBHOOK_HOST_RATE_PER_SECOND, a delivery is given back unattempted and its job waits for a later second.
 */
@Injectable()
export class WebhookAttempts {
  private readonly logger = new Logger('Webhooks');
  private readonly leaseMs: number;
  /** Per delivery another sender of this process holds: who waits behind it (`waitBehind`). */
  private readonly behind = new Map<string, Set<() => void>>();

  constructor(
    private readonly config: AppConfig,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly sender: WebhookSender,
    private readonly queue: WebhookQueue,
    private readonly metrics: MetricsService,
    private readonly hostLimit: WebhookHostLimit,
  ) {
    this.leaseMs = config.webhook.timeoutMs + LEASE_MARGIN_MS;
  }

  /**
   * A `webhook.deliver` job: the first attempts of this delivery's task and URL, in sequence order. `looks` counts
   * the earlier runs of this job that found its delivery waiting behind one another sender holds.
   */
  async sendFirstAttempts(deliveryId: string, looks: number, now = Date.now): Promise<JobNext> {
    const { claimed, ownWaiting, head } = await this.deliveries.claimNextFirst(deliveryId, this.leaseMs);
    // The sender holding the delivery ahead normally sends this one next; in case it looked for the next one before
    // this delivery was written, look again shortly (no worker slot is held meanwhile).
    if (!claimed && ownWaiting) {
      const until = now() + Math.min(LOOK_AGAIN_MS.max, LOOK_AGAIN_MS.first * 2 ** looks);
      return { kind: 'wait', until, behind: head ?? undefined };
    }
    for (let next = claimed; next;) {
      const attempted = await this.attempt(next, now);
      if (attempted.kind === 'postponed') return { kind: 'wait', until: attempted.until };
      if (attempted.status === 'failed') await this.addRetry(next.delivery, attempted.nextAttemptAt!, now);
      next = attempted.next;
    }
    return { kind: 'done' };
  }

  /**
   * One run of a `webhook.retry` job: the next attempt of its round. `runsBefore` counts the earlier runs of the job
   * that ended in a failed attempt, so the row should have had `data.attempts + runsBefore` attempts; if it has had
   * more, another job (one the reconciler added, or a replay) is retrying it, and this one stops.
   */
  async sendRetry(data: WebhookRetryData, runsBefore: number, now = Date.now): Promise<JobNext> {
    const claimed =
      data.attempts === undefined
        ? await this.deliveries.claimRetry(data.deliveryId, this.leaseMs) // a job added before the count was carried
        : await this.deliveries.claimRetryAt(data.deliveryId, data.attempts + runsBefore, this.leaseMs);
    if (!claimed) return { kind: 'done' };
    const attempted = await this.attempt(claimed, now);
    if (attempted.kind === 'postponed') return { kind: 'wait', until: attempted.until };
    if (attempted.status !== 'failed') return { kind: 'done' };
    return {
      kind: 'retry',
      delayMs: Math.max(0, attempted.nextAttemptAt!.getTime() - now()),
      error: attempted.error ?? 'failed',
    };
  }

  /** One attempt: sign, send, record. Answers what the row says now and, after a first attempt, the next one due. */
  private async attempt({ delivery, taskSecret }: ClaimedDelivery, now: () => number): Promise<Attempted> {
    const headers = this.sign(delivery, taskSecret, now());
    if (typeof headers !== 'string') {
      const waitMs = await this.hostLimit.take(delivery.url);
      if (waitMs > 0) {
        // Given back unattempted: nothing recorded, no attempt counted. A first attempt keeps its place in the
        // sequence order, since only the first delivery waiting for its first attempt is ever sent.
        const until = now() + waitMs;
        await this.deliveries.release(delivery.id, new Date(until));
        return { kind: 'postponed', until };
      }
    }
    const outcome: AttemptOutcome =
      typeof headers === 'string'
        ? { ok: false, statusCode: null, durationMs: 0, error: headers, responseExcerpt: null, gone: true }
        : await this.sender.send(delivery.url, headers, delivery.body);
    const record = recordOf(outcome, delivery.roundAttempts + 1, this.config.webhook, now());
    // A delivery dead-lettered unsigned was never sent: no time to observe.
    this.metrics.countWebhookDelivery(record.status, typeof headers === 'string' ? undefined : outcome.durationMs);
    const next = await this.deliveries.recordAttempt(delivery.id, record, this.leaseMs);
    this.recorded(delivery.id);
    const log = { deliveryId: delivery.id, taskId: delivery.taskId, attempt: delivery.attempts + 1 };
    if (record.status === 'failed') this.logger.warn(log, `webhook attempt failed, will retry: ${outcome.error}`);
    if (record.status === 'dead') this.logger.warn(log, `webhook dead-lettered: ${outcome.error}`);
    return { kind: 'recorded', status: record.status, nextAttemptAt: record.nextAttemptAt, error: outcome.error, next };
  }

  /**
   * Resolves once this process has recorded an attempt of `deliveryId` (the line it headed is free, or its sender
   * has claimed the next delivery), or after `ms`: a delivery waiting behind it in this process looks again then,
   * instead of at the end of its wait.
   */
  waitBehind(deliveryId: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiters = this.behind.get(deliveryId) ?? new Set<() => void>();
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (!waiters.size && this.behind.get(deliveryId) === waiters) this.behind.delete(deliveryId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      this.behind.set(deliveryId, waiters);
    });
  }

  private recorded(deliveryId: string): void {
    const waiters = this.behind.get(deliveryId);
    if (waiters) for (const done of [...waiters]) done();
  }

  /** The retry job of a failed first attempt. If this add is lost, the reconciler adds it once the row is overdue. */
  private async addRetry(delivery: DeliveryRow, nextAttemptAt: Date, now: () => number): Promise<void> {
    await this.queue
      .addRetry(delivery.id, delivery.attempts + 1, nextAttemptAt.getTime() - now())
      .catch((err: Error) =>
        this.logger.warn({ deliveryId: delivery.id }, `retry left to the reconciler: ${err.message}`),
      );
  }

  /**
   * The attempt's signature headers, or why none can be made: then the delivery is a dead letter at once (no retry
   * would sign it), with the reason recorded as its attempt, instead of a row that stays pending forever.
   */
  private sign(delivery: DeliveryRow, taskSecret: string | null, now: number): Record<string, string> | string {
    const { secret: deploymentSecret, requireSignature } = this.config.webhook;
    const secret = taskSecret ?? deploymentSecret;
    const message = { id: delivery.id, body: delivery.body, at: new Date(now), event: delivery.eventType };
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
}
