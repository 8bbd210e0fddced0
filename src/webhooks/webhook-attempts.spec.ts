import { Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import type { MetricsService } from '../metrics/metrics.service';
import { WebhookAttempts } from './webhook-attempts';
import type {
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRow,
  FirstClaim,
  WebhookDeliveriesRepository,
} from './webhook-deliveries.repository';
import type { WebhookHostLimit } from './webhook-host-limit';
import type { WebhookQueue } from './webhook-queue.service';
import type { AttemptOutcome, WebhookSender } from './webhook-sender';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const now = () => NOW;
const TASK = '00000000-0000-4000-8000-0000000000aa';
const URL_A = 'https://receiver.example/hooks';

type Row = DeliveryRow & { leased: boolean };

/**
 * The rows of webhook_deliveries in memory, claimed the way the repository's statements claim them: a first
 * attempt only for the lowest-sequence delivery of its task and URL still waiting for one, nothing that is leased.
 */
class FakeDeliveries {
  readonly rows = new Map<string, Row>();
  readonly records: { id: string; record: AttemptRecord }[] = [];
  readonly released: { id: string; at: Date }[] = [];
  secret: string | null = null;

  add(id: string, over: Partial<Row> = {}): Row {
    const row: Row = {
      id,
      taskId: TASK,
      userId: 'alice',
      batchId: null,
      flowRunId: null,
      eventType: 'task.created',
      sequence: this.rows.size + 1,
      url: URL_A,
      body: `{"event":"${id}"}`,
      status: 'pending',
      attempts: 0,
      roundAttempts: 0,
      attemptLog: [],
      nextAttemptAt: new Date(NOW),
      lastStatusCode: null,
      lastError: null,
      createdAt: new Date(NOW),
      updatedAt: new Date(NOW),
      deliveredAt: null,
      leased: false,
      ...over,
    };
    this.rows.set(id, row);
    return row;
  }

  private waitingFirst = (r: Row) => r.attempts === 0 && r.status === 'pending';

  private claim(row: Row | undefined): ClaimedDelivery | null {
    if (!row || row.leased) return null;
    row.leased = true;
    return { delivery: { ...row }, taskSecret: this.secret };
  }

  private headOf(row: Row): Row | undefined {
    return [...this.rows.values()]
      .filter((r) => r.taskId === row.taskId && r.url === row.url && this.waitingFirst(r))
      .sort((a, b) => a.sequence - b.sequence)[0];
  }

  async claimNextFirst(id: string): Promise<FirstClaim> {
    const own = this.rows.get(id)!;
    const head = this.headOf(own);
    const claimed = this.claim(head);
    return {
      claimed,
      ownWaiting: !claimed && this.waitingFirst(own) && !own.leased,
      head: claimed ? null : (head?.id ?? null),
    };
  }

  async claimRetry(id: string): Promise<ClaimedDelivery | null> {
    const row = this.rows.get(id)!;
    return row.attempts > 0 && ['pending', 'failed'].includes(row.status) ? this.claim(row) : null;
  }

  async claimRetryAt(id: string, attempts: number): Promise<ClaimedDelivery | null> {
    return this.rows.get(id)!.attempts === attempts ? this.claimRetry(id) : null;
  }

  async recordAttempt(id: string, record: AttemptRecord): Promise<ClaimedDelivery | null> {
    const row = this.rows.get(id)!;
    Object.assign(row, {
      attempts: row.attempts + 1,
      roundAttempts: row.roundAttempts + 1,
      status: record.status,
      nextAttemptAt: record.nextAttemptAt,
      leased: false,
    });
    this.records.push({ id, record });
    return row.attempts === 1 ? this.claim(this.headOf(row)) : null;
  }

  async release(id: string, at: Date): Promise<void> {
    this.rows.get(id)!.leased = false;
    this.released.push({ id, at });
  }
}

function answer(over: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return { ok: true, statusCode: 204, durationMs: 5, error: null, responseExcerpt: null, gone: false, ...over };
}

function setup(env: Record<string, string> = {}) {
  const config = AppConfig.fromEnv({
    WEBHOOK_SECRET: 'a-deployment-secret-0123456789',
    WEBHOOK_RETRY_DELAYS: '1000,5000',
    WEBHOOK_MAX_RETRIES: '2',
    ...env,
  });
  const deliveries = new FakeDeliveries();
  const sent: { id: string; headers: Record<string, string> }[] = [];
  let answers: (body: string) => AttemptOutcome = () => answer();
  const sender = {
    send: jest.fn(async (_url: string, headers: Record<string, string>, body: string) => {
      sent.push({ id: headers['webhook-id'], headers });
      return answers(body);
    }),
  };
  const hostWaits: number[] = [];
  const hostLimit = { take: jest.fn(async () => hostWaits.shift() ?? 0) };
  const queue = { addRetry: jest.fn(async () => undefined) };
  const metrics = { countWebhookDelivery: jest.fn() };
  const attempts = new WebhookAttempts(
    config,
    deliveries as unknown as WebhookDeliveriesRepository,
    sender as unknown as WebhookSender,
    queue as unknown as WebhookQueue,
    metrics as unknown as MetricsService,
    hostLimit as unknown as WebhookHostLimit,
  );
  const answerWith = (fn: (body: string) => AttemptOutcome) => (answers = fn);
  return { attempts, deliveries, sent, sender, hostLimit, hostWaits, queue, metrics, answerWith };
}

// Failed and dead attempts are logged as warnings; the records are what these tests read.
beforeEach(() => jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined));
afterEach(() => jest.restoreAllMocks());

describe('WebhookAttempts: first attempts', () => {
  it('records a 2xx as delivered, signed with the deployment secret, and adds no retry', async () => {
    const t = setup();
    t.deliveries.add('d1');
    expect(await t.attempts.sendFirstAttempts('d1', 0, now)).toEqual({ kind: 'done' });
    expect(t.sent.map((s) => s.id)).toEqual(['d1']);
    expect(t.sent[0].headers['webhook-signature']).toMatch(/^v1,/);
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'delivered', attempts: 1, leased: false });
    expect(t.queue.addRetry).not.toHaveBeenCalled();
    expect(t.metrics.countWebhookDelivery).toHaveBeenCalledWith('delivered', expect.any(Number));
  });

  it('dead-letters a 410 Gone at once, without a retry', async () => {
    const t = setup();
    t.deliveries.add('d1');
    t.answerWith(() => answer({ ok: false, statusCode: 410, error: 'HTTP 410', gone: true }));
    await t.attempts.sendFirstAttempts('d1', 0, now);
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'dead', attempts: 1 });
    expect(t.queue.addRetry).not.toHaveBeenCalled();
    expect(t.metrics.countWebhookDelivery).toHaveBeenCalledWith('dead', expect.any(Number));
  });

  it('gives a failed first attempt a retry job due when its row says, and sends the next delivery meanwhile', async () => {
    const t = setup();
    t.deliveries.add('d1');
    t.deliveries.add('d2');
    t.answerWith((body) =>
      body.includes('d1') ? answer({ ok: false, statusCode: 500, error: 'HTTP 500' }) : answer(),
    );
    await t.attempts.sendFirstAttempts('d1', 0, now);
    expect(t.sent.map((s) => s.id)).toEqual(['d1', 'd2']);
    const failed = t.deliveries.rows.get('d1')!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 1 });
    const delay = failed.nextAttemptAt!.getTime() - NOW;
    expect(delay).toBeGreaterThanOrEqual(800);
    expect(delay).toBeLessThanOrEqual(1200);
    expect(t.queue.addRetry).toHaveBeenCalledWith('d1', 1, delay);
    expect(t.deliveries.rows.get('d2')).toMatchObject({ status: 'delivered' });
  });

  it("sends one task's deliveries to one URL in sequence order, whichever job runs first", async () => {
    const t = setup();
    for (const id of ['d1', 'd2', 'd3']) t.deliveries.add(id);
    t.deliveries.add('other', { url: 'https://elsewhere.example/hooks', sequence: 2 });
    // The job of the last delivery runs first: it sends the first one, then each next one the record hands over.
    await t.attempts.sendFirstAttempts('d3', 0, now);
    expect(t.sent.map((s) => s.id)).toEqual(['d1', 'd2', 'd3']);
    // The same task's delivery to another URL is ordered on its own, untouched by these.
    expect(t.deliveries.rows.get('other')).toMatchObject({ attempts: 0, leased: false });
    // The jobs of d1 and d2 then find nothing left to send.
    expect(await t.attempts.sendFirstAttempts('d1', 0, now)).toEqual({ kind: 'done' });
    expect(await t.attempts.sendFirstAttempts('d2', 0, now)).toEqual({ kind: 'done' });
    expect(t.sender.send).toHaveBeenCalledTimes(3);
  });

  it('leaves a delivery behind one another sender holds to that sender, looking again later (20 ms, doubling to 1 s)', async () => {
    const t = setup();
    t.deliveries.add('d1', { leased: true }); // another worker is sending it
    t.deliveries.add('d2');
    const wait = { kind: 'wait', behind: 'd1' };
    expect(await t.attempts.sendFirstAttempts('d2', 0, now)).toEqual({ ...wait, until: NOW + 20 });
    expect(await t.attempts.sendFirstAttempts('d2', 2, now)).toEqual({ ...wait, until: NOW + 80 });
    expect(await t.attempts.sendFirstAttempts('d2', 12, now)).toEqual({ ...wait, until: NOW + 1000 });
    expect(t.sender.send).not.toHaveBeenCalled();
    expect(t.deliveries.rows.get('d2')).toMatchObject({ attempts: 0, leased: false });
  });

  it('wakes a delivery waiting behind another as soon as this process records that one', async () => {
    const t = setup();
    t.deliveries.add('d1');
    // A delivery of this process waits behind d1 (for a minute at most) while d1 is sent and recorded here.
    const woken = t.attempts.waitBehind('d1', 60_000).then(() => 'woken');
    const later = new Promise((resolve) => setTimeout(() => resolve('timed out'), 200));
    await t.attempts.sendFirstAttempts('d1', 0, now);
    expect(t.deliveries.records.map((r) => r.id)).toEqual(['d1']);
    expect(await Promise.race([woken, later])).toBe('woken');
    // A wait behind a delivery nobody here records ends at its time.
    await expect(t.attempts.waitBehind('elsewhere', 10)).resolves.toBeUndefined();
  });

  it('makes no attempt over the host rate: the delivery is given back unattempted and the job waits', async () => {
    const t = setup();
    t.deliveries.add('d1');
    t.deliveries.add('d2');
    t.hostWaits.push(0, 750); // d1 goes now, d2 finds the host's second used up
    expect(await t.attempts.sendFirstAttempts('d1', 0, now)).toEqual({ kind: 'wait', until: NOW + 750 });
    expect(t.sent.map((s) => s.id)).toEqual(['d1']);
    expect(t.deliveries.released).toEqual([{ id: 'd2', at: new Date(NOW + 750) }]);
    expect(t.deliveries.rows.get('d2')).toMatchObject({ attempts: 0, status: 'pending', leased: false });
    // The job comes back: d2 is still the first waiting for its first attempt, and goes.
    expect(await t.attempts.sendFirstAttempts('d1', 0, now)).toEqual({ kind: 'done' });
    expect(t.sent.map((s) => s.id)).toEqual(['d1', 'd2']);
    expect(t.deliveries.records).toHaveLength(2);
  });

  it('dead-letters a delivery whose secret cannot sign, with the reason, without sending it', async () => {
    const t = setup();
    t.deliveries.add('d1');
    t.deliveries.secret = 'whsec_not-base64!';
    await t.attempts.sendFirstAttempts('d1', 0, now);
    expect(t.sender.send).not.toHaveBeenCalled();
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'dead', attempts: 1 });
    expect(t.deliveries.records[0].record.attempt.error).toMatch(/secret cannot sign/);
  });

  it('sends unsigned when signatures are not required and no secret exists', async () => {
    const t = setup({ WEBHOOK_SECRET: '', WEBHOOK_REQUIRE_SIGNATURE: 'false' });
    t.deliveries.add('d1');
    await t.attempts.sendFirstAttempts('d1', 0, now);
    expect(t.sent[0].headers).toMatchObject({ 'webhook-id': 'd1', 'x-webhook-event': 'task.created' });
    expect(t.sent[0].headers['webhook-signature']).toBeUndefined();
  });
});

describe('WebhookAttempts: retry jobs', () => {
  it('asks BullMQ for a retry after the delay its row records when a retry fails (5xx or timeout)', async () => {
    const t = setup();
    t.deliveries.add('d1', { status: 'failed', attempts: 1, roundAttempts: 1 });
    t.answerWith(() => answer({ ok: false, statusCode: null, error: 'no answer within 400 ms' }));
    const next = await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 0, now);
    const row = t.deliveries.rows.get('d1')!;
    expect(row).toMatchObject({ status: 'failed', attempts: 2 });
    expect(next).toEqual({
      kind: 'retry',
      delayMs: row.nextAttemptAt!.getTime() - NOW,
      error: 'no answer within 400 ms',
    });
    // The second retry's delay: 5000 ms ± 20 %.
    expect((next as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(4000);
    expect((next as { delayMs: number }).delayMs).toBeLessThanOrEqual(6000);
    expect(t.queue.addRetry).not.toHaveBeenCalled();
  });

  it("honours the receiver's Retry-After, capped at an hour", async () => {
    const t = setup();
    t.deliveries.add('d1', { status: 'failed', attempts: 1, roundAttempts: 1 });
    t.answerWith(() => answer({ ok: false, statusCode: 429, error: 'HTTP 429', retryAfterMs: 60_000 }));
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 0, now)).toMatchObject({ delayMs: 60_000 });
    expect(t.deliveries.rows.get('d1')!.nextAttemptAt).toEqual(new Date(NOW + 60_000));
    t.deliveries.add('d2', { status: 'failed', attempts: 1, roundAttempts: 1 });
    t.answerWith(() => answer({ ok: false, statusCode: 503, error: 'HTTP 503', retryAfterMs: 86_400_000 }));
    expect(await t.attempts.sendRetry({ deliveryId: 'd2', attempts: 1 }, 0, now)).toMatchObject({
      delayMs: 3600_000,
    });
  });

  it('dead-letters after the last retry of the round and asks for no more', async () => {
    const t = setup(); // WEBHOOK_MAX_RETRIES=2: three attempts a round
    t.deliveries.add('d1', { status: 'failed', attempts: 2, roundAttempts: 2 });
    t.answerWith(() => answer({ ok: false, statusCode: 500, error: 'HTTP 500' }));
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 1, now)).toEqual({ kind: 'done' });
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'dead', attempts: 3, nextAttemptAt: null });
  });

  it('gives a replay a fresh round: the row counts from the replay, not from the first attempt', async () => {
    const t = setup();
    // Dead after three attempts, then replayed: pending with a round of its own.
    t.deliveries.add('d1', { status: 'pending', attempts: 3, roundAttempts: 0 });
    t.answerWith(() => answer({ ok: false, statusCode: 500, error: 'HTTP 500' }));
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 3 }, 0, now)).toMatchObject({ kind: 'retry' });
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'failed', attempts: 4, roundAttempts: 1 });
  });

  it('stops when another job has attempted the delivery since (the row has moved on), sending nothing', async () => {
    const t = setup();
    t.deliveries.add('d1', { status: 'failed', attempts: 3, roundAttempts: 2 });
    // Added with attempts 1, one failed run before this one: it expects 2 attempts, the row has had 3.
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 1, now)).toEqual({ kind: 'done' });
    expect(t.sender.send).not.toHaveBeenCalled();
    expect(t.deliveries.rows.get('d1')!.leased).toBe(false);
    // The job whose count matches goes on with it.
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 3 }, 0, now)).toEqual({ kind: 'done' });
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'delivered', attempts: 4 });
  });

  it('makes no retry attempt over the host rate: the job waits, and the wait costs no attempt', async () => {
    const t = setup();
    t.deliveries.add('d1', { status: 'failed', attempts: 1, roundAttempts: 1 });
    t.hostWaits.push(300);
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 0, now)).toEqual({
      kind: 'wait',
      until: NOW + 300,
    });
    expect(t.sender.send).not.toHaveBeenCalled();
    expect(t.deliveries.rows.get('d1')).toMatchObject({ attempts: 1, leased: false });
    // BullMQ counts no failed run for a wait, so the same count is expected when the job comes back.
    expect(await t.attempts.sendRetry({ deliveryId: 'd1', attempts: 1 }, 0, now)).toEqual({ kind: 'done' });
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it('still runs a retry job added before jobs carried the count', async () => {
    const t = setup();
    t.deliveries.add('d1', { status: 'failed', attempts: 2, roundAttempts: 2 });
    expect(await t.attempts.sendRetry({ deliveryId: 'd1' }, 0, now)).toEqual({ kind: 'done' });
    expect(t.deliveries.rows.get('d1')).toMatchObject({ status: 'delivered', attempts: 3 });
  });
});
