import { TASK_BACKOFF_TYPE, WEBHOOK_BACKOFF_TYPE } from '../queue/queue.constants';
import {
  makeWebhookBackoffStrategy,
  MAX_RETRY_AFTER_MS,
  recordOf,
  WebhookAttemptFailed,
  webhookRetryDelayMs,
} from './webhook-retry-policy';
import type { AttemptOutcome } from './webhook-sender';

const DELAYS = [1000, 5000, 15000];
const POLICY = { maxRetries: 3, retryDelaysMs: DELAYS };
const NOW = Date.parse('2026-03-01T12:00:00Z');

function outcome(over: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return {
    ok: false,
    statusCode: 500,
    durationMs: 12,
    error: 'HTTP 500',
    responseExcerpt: 'boom',
    gone: false,
    ...over,
  };
}

describe('webhookRetryDelayMs', () => {
  it('takes the configured delays in order, the last one repeating, each within ±20 %', () => {
    for (const [round, base] of [
      [1, 1000],
      [2, 5000],
      [3, 15000],
      [7, 15000],
    ]) {
      expect(webhookRetryDelayMs(round, DELAYS, undefined, () => 0)).toBe(base * 0.8);
      expect(webhookRetryDelayMs(round, DELAYS, undefined, () => 0.5)).toBe(base);
      expect(webhookRetryDelayMs(round, DELAYS, undefined, () => 0.999999)).toBe(Math.round(base * 1.2));
    }
  });

  it("lets the receiver's Retry-After win, shorter or longer, up to an hour", () => {
    expect(webhookRetryDelayMs(1, DELAYS, 60_000)).toBe(60_000);
    expect(webhookRetryDelayMs(3, DELAYS, 0)).toBe(0);
    expect(webhookRetryDelayMs(1, DELAYS, 5 * 3600_000)).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe('recordOf', () => {
  it('records a 2xx as delivered, with the attempt as the log entry', () => {
    const record = recordOf(outcome({ ok: true, statusCode: 204, error: null, responseExcerpt: null }), 1, POLICY, NOW);
    expect(record).toEqual({
      status: 'delivered',
      nextAttemptAt: null,
      attempt: {
        at: new Date(NOW).toISOString(),
        status_code: 204,
        duration_ms: 12,
        error: null,
        response_excerpt: null,
      },
    });
  });

  it('dead-letters a 410 Gone at once, whatever attempts are left', () => {
    const record = recordOf(outcome({ statusCode: 410, error: 'HTTP 410', gone: true }), 1, POLICY, NOW);
    expect(record).toMatchObject({ status: 'dead', nextAttemptAt: null, attempt: { status_code: 410 } });
  });

  it('retries a 5xx or a timeout after the delay for its round, and dead-letters after the last retry', () => {
    const timeout = outcome({ statusCode: null, error: 'no answer within 400 ms', responseExcerpt: null });
    for (const [round, base] of [
      [1, 1000],
      [2, 5000],
      [3, 15000],
    ]) {
      for (const failed of [outcome(), timeout]) {
        const record = recordOf(failed, round, POLICY, NOW, () => 0.5);
        expect(record.status).toBe('failed');
        expect(record.nextAttemptAt).toEqual(new Date(NOW + base));
      }
    }
    expect(recordOf(outcome(), 4, POLICY, NOW)).toMatchObject({ status: 'dead', nextAttemptAt: null });
    expect(recordOf(timeout, 1, { ...POLICY, maxRetries: 0 }, NOW)).toMatchObject({ status: 'dead' });
  });

  it("schedules the next attempt at the receiver's Retry-After, capped at an hour", () => {
    const soon = recordOf(outcome({ statusCode: 429, retryAfterMs: 60_000 }), 1, POLICY, NOW);
    expect(soon.nextAttemptAt).toEqual(new Date(NOW + 60_000));
    const far = recordOf(outcome({ statusCode: 503, retryAfterMs: 86_400_000 }), 1, POLICY, NOW);
    expect(far.nextAttemptAt).toEqual(new Date(NOW + MAX_RETRY_AFTER_MS));
  });
});

describe('makeWebhookBackoffStrategy', () => {
  const backoff = makeWebhookBackoffStrategy(DELAYS);

  it('waits the delay a failed attempt brings (the one its row records)', () => {
    expect(backoff(1, WEBHOOK_BACKOFF_TYPE, new WebhookAttemptFailed(4321, 'HTTP 500'))).toBe(4321);
    expect(backoff(3, WEBHOOK_BACKOFF_TYPE, new WebhookAttemptFailed(0, 'HTTP 429'))).toBe(0);
  });

  it('waits the configured delay for the runs so far when nothing was attempted (another error)', () => {
    const delay = backoff(2, WEBHOOK_BACKOFF_TYPE, new Error('connection terminated'));
    expect(delay).toBeGreaterThanOrEqual(4000);
    expect(delay).toBeLessThanOrEqual(6000);
  });

  it('refuses to retry a job of another backoff type', () => {
    expect(backoff(1, TASK_BACKOFF_TYPE, new WebhookAttemptFailed(10, 'x'))).toBe(-1);
  });
});
