import { WEBHOOK_BACKOFF_TYPE } from '../queue/queue.constants';
import type { AttemptRecord } from './webhook-deliveries.repository';
import type { AttemptOutcome } from './webhook-sender';

/** A receiver's Retry-After is honoured up to this. */
export const MAX_RETRY_AFTER_MS = 3600_000;

export interface WebhookRetryPolicy {
  maxRetries: number;
  retryDelaysMs: number[];
}

/**
 * The delay after the failed attempt `round` (1-based) of a round of attempts: WEBHOOK_RETRY_DELAYS in order (the
 * last one repeats) with ±20 % jitter, so failures that happen together do not come back together; a receiver's
 * Retry-After wins, up to an hour.
 */
export function webhookRetryDelayMs(
  round: number,
  delaysMs: number[],
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  const base = delaysMs[Math.min(Math.max(round, 1), delaysMs.length) - 1];
  return Math.round(base * (0.8 + random() * 0.4));
}

/**
 * What attempt `round` of a round of attempts leaves in the row: delivered on a 2xx; dead on 410 Gone (or a delivery
 * that cannot be signed) and after the last retry; otherwise failed, with the time of the next attempt.
 */
export function recordOf(
  outcome: AttemptOutcome,
  round: number,
  policy: WebhookRetryPolicy,
  now = Date.now(),
  random: () => number = Math.random,
): AttemptRecord {
  const attempt = {
    at: new Date(now).toISOString(),
    status_code: outcome.statusCode,
    duration_ms: outcome.durationMs,
    error: outcome.error,
    response_excerpt: outcome.responseExcerpt,
  };
  if (outcome.ok) return { attempt, status: 'delivered', nextAttemptAt: null };
  if (outcome.gone || round > policy.maxRetries) return { attempt, status: 'dead', nextAttemptAt: null };
  const delay = webhookRetryDelayMs(round, policy.retryDelaysMs, outcome.retryAfterMs, random);
  return { attempt, status: 'failed', nextAttemptAt: new Date(now + delay) };
}

/**
 * Thrown by a retry job after its failed attempt is recorded: BullMQ runs the job again after `delayMs`, the delay
 * the row already shows as its next attempt time (jitter and Retry-After included, so the two agree).
 */
export class WebhookAttemptFailed extends Error {
  override readonly name = 'WebhookAttemptFailed';

  constructor(
    readonly delayMs: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * BullMQ's custom backoff for webhook retry jobs. A failed attempt brings its own delay; any other error (the
 * database did not answer, so nothing was attempted) waits the configured delay for the job's runs so far.
 */
export function makeWebhookBackoffStrategy(delaysMs: number[]) {
  return (attemptsMade: number, type?: string, err?: Error): number => {
    if (type !== WEBHOOK_BACKOFF_TYPE) return -1; // unknown type: no retry rather than a wrong delay
    if (err instanceof WebhookAttemptFailed) return err.delayMs;
    return webhookRetryDelayMs(attemptsMade, delaysMs);
  };
}
