import { WebhookDeliveriesRepository } from '../src/webhooks/webhook-deliveries.repository';
import { WebhookDispatch } from '../src/webhooks/webhook-dispatch';
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { payloadOf } from '../src/events/event-payload';
import { TaskEventType } from '../src/tasks/task.enums';
import { TasksRepository } from '../src/tasks/tasks.repository';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { countQueueEntries, deleteRedisKeys, loseQueueStore, sleep, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const BASE = '/api/v1/media';
const DEPLOYMENT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const TASK_SECRET = 'a-task-secret-of-its-own-0123';
const LIFECYCLE = ['task.created', 'task.started', 'task.completed'];

describe('webhooks', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    t = await TestApp.start({
      env: {
        WEBHOOK_SECRET: DEPLOYMENT_SECRET,
        WEBHOOK_RETRY_DELAYS: '100',
        WEBHOOK_MAX_RETRIES: '2',
        WEBHOOK_TIMEOUT_MS: '400',
      },
    });
  });
  beforeEach(async () => {
    receiver = await WebhookReceiver.start();
  });
  afterEach(async () => {
    await receiver.close();
  });
  afterAll(async () => {
    await t.close();
  });

  /** A subtitle task (the built-in engine: fast, no provider needed) reporting to `path` on the receiver. */
  async function submit(path: string, extra: Record<string, unknown> = {}, as = 'alice'): Promise<string> {
    const res = await t.request('POST', `${BASE}/subtitles/generate`, {
      as,
      body: { text: 'One line. Another line.', webhook_url: `${receiver.url}${path}`, ...extra },
    });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  async function deliveriesOf(taskId: string, as = 'alice'): Promise<any[]> {
    const res = await t.request('GET', `${BASE}/tasks/${taskId}/webhooks`, { as });
    expect(res.status).toBe(200);
    return res.body.data;
  }

  async function waitForDeliveries(taskId: string, predicate: (d: any[]) => boolean, timeoutMs = 10000) {
    return waitUntil(`the deliveries of ${taskId} to match`, () => deliveriesOf(taskId), {
      timeoutMs,
      intervalMs: 50,
      until: predicate,
    });
  }

  it('delivers each lifecycle event once, in sequence order, signed both ways, with the contract body', async () => {
    const taskId = await submit('/hooks', { webhook_events: LIFECYCLE });
    const got = await receiver.waitFor((all) => all.length === 3);
    expect(got.map((r) => r.json.event_type)).toEqual(LIFECYCLE);
    expect(got.map((r) => r.json.sequence)).toEqual([1, 2, 3]);

    const wh = new Webhook(DEPLOYMENT_SECRET);
    const key = Buffer.from(DEPLOYMENT_SECRET.slice('whsec_'.length), 'base64');
    for (const r of got) {
      expect(r.path).toBe('/hooks');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-webhook-event']).toBe(r.json.event_type);
      expect(() => wh.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
      expect(r.headers['x-webhook-signature']).toBe(`sha256=${createHmac('sha256', key).update(r.body).digest('hex')}`);
      // A forged body fails verification.
      expect(() => wh.verify(r.body.replace('task.', 'tasks.'), r.headers as Record<string, string>)).toThrow();
    }
    // The body the database built is the contract's payload of the finished task.
    const task = (await t.app.get(TasksRepository).findById(taskId))!;
    expect(got[2].json).toEqual(
      JSON.parse(JSON.stringify(payloadOf(TaskEventType.Completed, task, task.eventSeq, task.updatedAt))),
    );
    expect(got[2].json).toMatchObject({
      task_id: taskId,
      user_id: 'alice',
      data: { status: 'completed', type: 'subtitle_generation', progress: 1, error: null },
    });
    expect(got[2].json.data.output_data.files[0].content_type).toMatch(/srt|subrip/);

    const deliveries = await waitForDeliveries(taskId, (d) => d.every((x: any) => x.status === 'delivered'));
    expect(deliveries.map((d) => d.event_type)).toEqual(LIFECYCLE);
    expect(deliveries.map((d) => d.id)).toEqual(got.map((r) => r.headers['webhook-id']));
    expect(deliveries[0]).toMatchObject({ attempt_count: 1, next_attempt_at: null, payload: got[0].json });
    expect(deliveries[0].attempts[0]).toMatchObject({ status_code: 204, error: null });
    expect(JSON.stringify(deliveries)).not.toContain(DEPLOYMENT_SECRET);
  });

  it("signs with the task's own secret as UTF-8 bytes, and never returns it", async () => {
    const taskId = await submit('/own', { webhook_secret: TASK_SECRET, webhook_events: ['task.completed'] });
    const [r] = await receiver.waitFor((all) => all.length === 1);
    expect(r.json.event_type).toBe('task.completed');
    expect(() => new Webhook(TASK_SECRET, { format: 'raw' }).verify(r.body, r.headers as never)).not.toThrow();
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(r.body, r.headers as never)).toThrow();
    const task = await t.request('GET', `${BASE}/tasks/${taskId}`);
    expect(JSON.stringify(task.body)).not.toContain(TASK_SECRET);
    expect(JSON.stringify(await deliveriesOf(taskId))).not.toContain(TASK_SECRET);
  });

  it('refuses a whsec_ secret that could not sign (400 naming webhook_secret), on tasks and in batches', async () => {
    const hook = `${receiver.url}/never`;
    const bad = ['whsec_not-base64!', 'whsec_supersecretvalue123', `whsec_${randomBytes(16).toString('base64')}`];
    for (const secret of bad) {
      const single = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Hi.', webhook_url: hook, webhook_secret: secret },
      });
      expect(single.status).toBe(400);
      expect(single.body.errors).toEqual([expect.objectContaining({ field: 'webhook_secret' })]);
      expect(JSON.stringify(single.body)).not.toContain(secret.slice('whsec_'.length));
      const item = { task_type: 'subtitle_generation', input_data: { text: 'Hi.' }, webhook_url: hook };
      const inItem = await t.request('POST', `${BASE}/batch`, { body: [item, { ...item, webhook_secret: secret }] });
      expect(inItem.status).toBe(400);
      expect(inItem.body.errors).toEqual([expect.objectContaining({ index: 1, field: 'webhook_secret' })]);
      const forBatch = await t.request('POST', `${BASE}/batch`, {
        body: { tasks: [item], webhook_url: hook, webhook_secret: secret },
      });
      expect(forBatch.status).toBe(400);
      expect(forBatch.body.errors).toEqual([expect.objectContaining({ field: 'webhook_secret' })]);
    }
    const good = `whsec_${randomBytes(24).toString('base64')}`;
    const ok = await t.request('POST', `${BASE}/subtitles/generate`, {
      body: { text: 'Hi.', webhook_url: hook, webhook_secret: good, webhook_events: ['task.completed'] },
    });
    expect(ok.status).toBe(202);
    await receiver.waitFor((all) => all.length === 1);
    expect(() =>
      new Webhook(good).verify(receiver.received[0].body, receiver.received[0].headers as never),
    ).not.toThrow();
  });

  it('retries a 500 and records every attempt; first attempts stay in sequence order, a retry may land later', async () => {
    receiver.answer((req, _n, res) => {
      const firstCreated =
        req.json.event_type === 'task.created' &&
        receiver.on().filter((r) => r.json.event_type === 'task.created').length === 1;
      res.writeHead(firstCreated ? 500 : 200).end(firstCreated ? 'boom' : 'ok');
    });
    const taskId = await submit('/retry', { webhook_events: LIFECYCLE });
    const got = await receiver.waitFor((all) => all.length === 4);
    const firstOf = (type: string) => got.findIndex((r) => r.json.event_type === type);
    expect(firstOf('task.created')).toBeLessThan(firstOf('task.started'));
    expect(firstOf('task.started')).toBeLessThan(firstOf('task.completed'));
    const created = got.filter((r) => r.json.event_type === 'task.created');
    expect(created).toHaveLength(2);
    expect(created[0].headers['webhook-id']).toBe(created[1].headers['webhook-id']);
    expect(created[0].body).toBe(created[1].body);

    const deliveries = await waitForDeliveries(taskId, (d) => d.every((x: any) => x.status === 'delivered'));
    const first = deliveries.find((d) => d.event_type === 'task.created');
    expect(first.attempts.map((a: any) => [a.status_code, a.error, a.response_excerpt])).toEqual([
      [500, 'HTTP 500', 'boom'],
      [200, null, 'ok'],
    ]);
  });

  it('sends a backed-up line in order, each first attempt once and only after the one before it was answered', async () => {
    // Slow answers: started and completed are written while created is still in flight, so the line backs up.
    const answeredAt: number[] = [];
    receiver.answer(async (req, n, res) => {
      await sleep(150);
      const failStarted =
        req.json.event_type === 'task.started' &&
        receiver.on().filter((r) => r.json.event_type === 'task.started').length === 1;
      answeredAt[n - 1] = Date.now();
      res.writeHead(failStarted ? 500 : 204).end();
    });
    const taskId = await submit('/slow', { webhook_events: LIFECYCLE });
    const got = await receiver.waitFor((all) => all.length === 4);
    const firsts = got
      .map((_r, i) => i)
      .filter((i) => got.findIndex((o) => o.headers['webhook-id'] === got[i].headers['webhook-id']) === i);
    expect(firsts.map((i) => got[i].json.event_type)).toEqual(LIFECYCLE);
    for (let k = 1; k < firsts.length; k++) expect(got[firsts[k]].at).toBeGreaterThanOrEqual(answeredAt[firsts[k - 1]]);
    // The failed started is retried after the completed went out.
    expect(got.map((r) => r.json.event_type)).toEqual([...LIFECYCLE, 'task.started']);
    const deliveries = await waitForDeliveries(taskId, (d) => d.every((x: any) => x.status === 'delivered'));
    expect(deliveries.map((d) => [d.event_type, d.attempt_count])).toEqual([
      ['task.created', 1],
      ['task.started', 2],
      ['task.completed', 1],
    ]);
  });

  it('dead-letters a delivery that always fails, lists it, and replays it with the same webhook-id', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(503).end());
    const taskId = await submit('/dead', { webhook_events: ['task.completed'] });
    const [dead] = await waitForDeliveries(taskId, (d) => d[0]?.status === 'dead');
    expect(dead.attempt_count).toBe(3); // the first attempt and WEBHOOK_MAX_RETRIES=2
    expect(receiver.received).toHaveLength(3);

    const letters = await t.request('GET', `${BASE}/webhooks/dead-letters`);
    expect(letters.body.data.map((d: any) => d.id)).toContain(dead.id);
    const stats = await t.request('GET', `${BASE}/webhooks/statistics`);
    expect(stats.body.dead).toBeGreaterThanOrEqual(1);

    receiver.answer((_req, _n, res) => void res.writeHead(200).end());
    const replay = await t.request('POST', `${BASE}/webhooks/${dead.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id: dead.id, status: 'pending' });
    await receiver.waitFor((all) => all.length === 4);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([dead.id]));
    const status = await waitForDeliveries(taskId, (d) => d[0].status === 'delivered');
    expect(status[0].attempt_count).toBe(4);
  });

  it('honours Retry-After, and refuses to replay a delivery that is still being retried (409)', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(429, { 'retry-after': '60' }).end());
    const taskId = await submit('/later', { webhook_events: ['task.completed'] });
    const [waiting] = await waitForDeliveries(taskId, (d) => d[0]?.status === 'failed');
    const delay = Date.parse(waiting.next_attempt_at) - Date.now();
    expect(delay).toBeGreaterThan(50_000);
    expect(delay).toBeLessThanOrEqual(60_000);
    const replay = await t.request('POST', `${BASE}/webhooks/${waiting.id}/replay`);
    expect(replay.status).toBe(409);
    expect(replay.body.message).toMatch(/only delivered or dead/);
  });

  it('stops at 410 Gone, never follows a redirect, and gives up on a receiver that does not answer in time', async () => {
    receiver.answer((req, _n, res) => {
      if (req.path === '/gone') return void res.writeHead(410).end();
      if (req.path === '/moved') return void res.writeHead(302, { location: `${receiver.url}/target` }).end();
      if (req.path === '/drip') {
        res.writeHead(200);
        const timer = setInterval(() => res.write('.'), 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      // '/silent': never answers
    });
    const only = { webhook_events: ['task.completed'] };
    const [gone, moved, silent, drip] = await Promise.all(
      ['/gone', '/moved', '/silent', '/drip'].map((p) => submit(p, only)),
    );
    const [g] = await waitForDeliveries(gone, (d) => d[0]?.status === 'dead');
    expect(g.attempts).toHaveLength(1);
    expect(g.attempts[0]).toMatchObject({ status_code: 410, error: 'HTTP 410' });

    const [m] = await waitForDeliveries(moved, (d) => d[0]?.attempt_count >= 1);
    expect(m.attempts[0]).toMatchObject({ status_code: 302, error: 'redirect (302) not followed' });
    for (const id of [silent, drip]) {
      const [s] = await waitForDeliveries(id, (d) => d[0]?.attempt_count >= 1);
      expect(s.attempts[0].error).toBe('no answer within 400 ms');
      expect(s.attempts[0].duration_ms).toBeGreaterThanOrEqual(390);
      expect(s.status).not.toBe('delivered');
    }
    expect(receiver.on('/target')).toHaveLength(0);
  });

  it('reads at most 64 KiB of an answer and keeps an excerpt', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(200).end('x'.repeat(1024 * 1024)));
    const taskId = await submit('/big', { webhook_events: ['task.completed'] });
    const [d] = await waitForDeliveries(taskId, (list) => list[0]?.status === 'delivered');
    expect(d.attempts[0].response_excerpt).toHaveLength(512);
  });

  it("answers 404 for another user's deliveries and task, and for unknown ids", async () => {
    const taskId = await submit('/mine', { webhook_events: ['task.created'] });
    const [d] = await waitForDeliveries(taskId, (list) => list.length === 1);
    for (const [method, path] of [
      ['GET', `/webhooks/${d.id}/status`],
      ['POST', `/webhooks/${d.id}/replay`],
      ['GET', `/tasks/${taskId}/webhooks`],
    ]) {
      expect((await t.request(method, `${BASE}${path}`, { as: 'bob' })).status).toBe(404);
    }
    expect((await t.request('GET', `${BASE}/webhooks/${d.id}/status`)).status).toBe(200);
    expect((await t.request('GET', `${BASE}/webhooks/not-a-uuid/status`)).status).toBe(404);
    const bobs = await t.request('GET', `${BASE}/webhooks/dead-letters?scope=all`, { as: 'bob' });
    expect(bobs.status).toBe(403);
  });

  it('sends nothing for events outside the filter', async () => {
    const taskId = await submit('/filtered', { webhook_events: ['task.failed'] });
    await t.waitForTask(taskId, (x) => x.status === 'completed');
    // A delivery is written with its transition, and sent from its row: once the task has completed, none is owed.
    expect(await deliveriesOf(taskId)).toEqual([]);
    expect(receiver.received).toHaveLength(0);
  });
});

describe('webhooks without a deployment secret', () => {
  it('refuses a webhook_url without a webhook_secret (400), since nothing could sign it', async () => {
    const t = await TestApp.start({ env: { APP_ROLE: 'api' }, listen: true });
    try {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Hi.', webhook_url: 'https://example.com/hook' },
      });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/webhook_secret is required/);
    } finally {
      await t.close();
    }
  });
});

describe('webhooks with WEBHOOK_REQUIRE_SIGNATURE=false and no deployment secret', () => {
  it('accepts a webhook_url without any secret and delivers unsigned; a task secret still signs', async () => {
    const t = await TestApp.start({ env: { WEBHOOK_REQUIRE_SIGNATURE: 'false' } });
    const receiver = await WebhookReceiver.start();
    try {
      const submit = async (path: string, extra: Record<string, unknown> = {}) => {
        const res = await t.request('POST', `${BASE}/subtitles/generate`, {
          body: { text: 'Hi.', webhook_url: `${receiver.url}${path}`, webhook_events: ['task.completed'], ...extra },
        });
        expect(res.status).toBe(202);
        return res.body.id as string;
      };
      const unsigned = await submit('/unsigned');
      const signed = await submit('/signed', { webhook_secret: TASK_SECRET });
      await receiver.waitFor((all) => all.length === 2);
      const [plain] = receiver.on('/unsigned');
      expect(plain.json).toMatchObject({ event_type: 'task.completed', task_id: unsigned });
      expect(plain.headers['webhook-id']).toEqual(expect.any(String));
      expect(plain.headers['x-webhook-event']).toBe('task.completed');
      expect(plain.headers['webhook-signature']).toBeUndefined();
      expect(plain.headers['x-webhook-signature']).toBeUndefined();
      const [verified] = receiver.on('/signed');
      expect(verified.json).toMatchObject({ task_id: signed });
      expect(() =>
        new Webhook(TASK_SECRET, { format: 'raw' }).verify(verified.body, verified.headers as never),
      ).not.toThrow();
      // The receiver has answered; the sender records the attempt right after.
      const deliveries = await waitUntil(
        'the attempt to be recorded',
        () => t.request('GET', `${BASE}/tasks/${unsigned}/webhooks`),
        { until: (res) => res.body.data?.[0]?.status !== 'pending' },
      );
      expect(deliveries.body.data).toMatchObject([{ status: 'delivered', attempt_count: 1 }]);
    } finally {
      await receiver.close();
      await t.close();
    }
  });
});

describe('webhook deliveries survive a lost queue', () => {
  it('a delivery whose job vanished with the queue store is sent by the reconciler', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `whlost${process.pid}`;
    const receiver = await WebhookReceiver.start();
    const env = { WEBHOOK_SECRET: DEPLOYMENT_SECRET, RECONCILE_INTERVAL_MS: '200', RECONCILE_GRACE_MS: '100' };
    // Not sent at commit: its job is what is lost.
    const api = await TestApp.start({
      database,
      redisPrefix,
      env: { ...env, APP_ROLE: 'api', WEBHOOK_SEND_AT_COMMIT: 'false' },
    });
    let worker: TestApp | undefined;
    try {
      const res = await api.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Survives.', webhook_url: `${receiver.url}/lost`, webhook_events: LIFECYCLE },
      });
      expect(res.status).toBe(202);
      // The delivery's job is added after the answer: once it is stored, losing the store loses it.
      const [delivery] = await api.dataSource.query<{ id: string }[]>(
        `SELECT id FROM webhook_deliveries WHERE task_id = $1`,
        [res.body.id],
      );
      await waitUntil('the delivery job to be stored', () => countQueueEntries({ database, redisPrefix }, delivery.id));
      // The task job and the delivery job are gone.
      expect(await loseQueueStore({ database, redisPrefix })).toBeGreaterThan(0);
      worker = await TestApp.start({ database, redisPrefix, env: { ...env, APP_ROLE: 'worker' } });
      const got = await receiver.waitFor((all) => all.length >= 3, 15000);
      expect(got.map((r) => r.json.event_type)).toEqual(LIFECYCLE);
    } finally {
      await worker?.close();
      await api.close();
      await receiver.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });
});

describe('a sender that dies mid-attempt', () => {
  it('leaves a leased delivery that is sent once, after the lease lapses, by another worker', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `whdead${process.pid}`;
    const receiver = await WebhookReceiver.start();
    const env = { WEBHOOK_SECRET: DEPLOYMENT_SECRET, RECONCILE_INTERVAL_MS: '200', RECONCILE_GRACE_MS: '100' };
    // Not sent at commit: the test plays the sender that dies.
    const api = await TestApp.start({
      database,
      redisPrefix,
      env: { ...env, APP_ROLE: 'api', WEBHOOK_SEND_AT_COMMIT: 'false' },
    });
    let worker: TestApp | undefined;
    try {
      const res = await api.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Outlives its sender.', webhook_url: `${receiver.url}/dead`, webhook_events: ['task.created'] },
      });
      expect(res.status).toBe(202);
      // What a worker killed during the attempt leaves behind: the row leased to it, the attempt never recorded,
      // and its job gone with it.
      const [row] = await api.dataSource.query<{ id: string; lease_until: Date }[]>(
        `WITH u AS (UPDATE webhook_deliveries SET lease_until = now() + interval '1500 milliseconds'
                    RETURNING id, lease_until)
         SELECT id, lease_until FROM u`,
      );
      await deleteRedisKeys(redisPrefix);
      worker = await TestApp.start({ database, redisPrefix, env: { ...env, APP_ROLE: 'worker' } });
      await receiver.waitFor((all) => all.length === 1, 10000);
      // Nobody sent it while the dead sender's lease held; then exactly one attempt.
      expect(receiver.received[0].at).toBeGreaterThanOrEqual(row.lease_until.getTime() - 50);
      // Once its row is marked delivered, no sender can claim it again.
      const after = await waitUntil(
        'the delivery to be marked',
        async () =>
          (
            await api.dataSource.query<{ status: string; attempts: number }[]>(
              `SELECT status, attempts FROM webhook_deliveries WHERE id = $1`,
              [row.id],
            )
          )[0],
        { until: (r) => r.status !== 'pending' },
      );
      expect(after).toEqual({ status: 'delivered', attempts: 1 });
      expect(receiver.received).toHaveLength(1);
      expect(receiver.received[0].headers['webhook-id']).toBe(row.id);
    } finally {
      await worker?.close();
      await api.close();
      await receiver.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });
});

describe('delivery recovery with rows that cannot progress', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeEach(async () => {
    receiver = await WebhookReceiver.start();
    t = await TestApp.start({
      env: { WEBHOOK_SECRET: DEPLOYMENT_SECRET, RECONCILE_INTERVAL_MS: '200', RECONCILE_GRACE_MS: '100' },
    });
  });
  afterEach(async () => {
    await t.close();
    await receiver.close();
  });

  /**
   * `count` completed tasks of `user`, each with a task.completed delivery whose job was lost, due an hour ago (so
   * the reconciler's sweep meets them first); answers nothing, the rows are the point.
   */
  async function lostDeliveries(user: string, count: number, path: string, secret: string | null, dueAgo: string) {
    await t.dataSource.query(
      `INSERT INTO tasks (id, user_id, type, status, priority, input, webhook_url, webhook_secret, event_seq,
                          created_at, updated_at)
       SELECT gen_random_uuid(), $1, 'subtitle_generation', 'completed', 'medium', '{}', $2, $3, 1,
              now() - $4::interval, now() - $4::interval
         FROM generate_series(1, $5)`,
      [user, `${receiver.url}${path}`, secret, dueAgo, count],
    );
    await t.dataSource.query(
      `INSERT INTO webhook_deliveries (id, task_id, user_id, event_type, sequence, url, body, next_attempt_at,
                                       created_at, updated_at)
       SELECT gen_random_uuid(), id, user_id, 'task.completed', 1, webhook_url, '{"event_type":"task.completed"}',
              updated_at, updated_at, updated_at
         FROM tasks WHERE user_id = $1`,
      [user],
    );
  }

  it('dead-letters deliveries whose stored secret cannot sign, with the reason, and recovers a lost good one', async () => {
    // Stored before secrets were checked at submit: more than one sweep's worth of them, all older than the good one.
    await lostDeliveries('mallory', 600, '/unsignable', 'whsec_not-base64!', '1 hour');
    await lostDeliveries('alice', 1, '/good', null, '1 minute');

    const [good] = await receiver.waitFor((all) => all.some((r) => r.path === '/good'), 20000);
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(good.body, good.headers as never)).not.toThrow();
    const rows = await waitUntil(
      'every unsignable delivery to be dead-lettered',
      () =>
        t.dataSource.query<{ status: string; attempts: number; last_error: string; logged: string }[]>(
          `SELECT status, attempts, last_error, attempt_log->0->>'error' AS logged
             FROM webhook_deliveries WHERE user_id = 'mallory'`,
        ),
      { timeoutMs: 20000, intervalMs: 100, until: (list) => list.every((r) => r.status === 'dead') },
    );
    expect(rows).toHaveLength(600);
    for (const row of rows) {
      expect(row).toMatchObject({ status: 'dead', attempts: 1 });
      expect(row.last_error).toMatch(/secret cannot sign.*base64/);
      expect(row.logged).toBe(row.last_error);
    }
    expect(receiver.on('/unsignable')).toHaveLength(0);
  }, 60000);

  it('never fills its sweep with deliveries another sender holds', async () => {
    // Deliveries leased to live senders (long attempts in hand) cannot be helped by the sweep: it must look past them.
    await lostDeliveries('busy', 600, '/held', null, '1 hour');
    await t.dataSource.query(
      `UPDATE webhook_deliveries SET lease_until = now() + interval '1 hour' WHERE user_id = 'busy'`,
    );
    await lostDeliveries('alice', 1, '/good', null, '1 minute');
    await receiver.waitFor((all) => all.some((r) => r.path === '/good'), 20000);
    expect(receiver.on('/held')).toHaveLength(0);
  }, 60000);

  it('takes one row per line of lost first attempts (the head, whose job sends the rest in order), and every retry', async () => {
    // The running reconciler sweeps every 200 ms: every row is due only in the future, so its sweeps take none of
    // them, and the sweep below is asked for what is due within two days (the line's rows, not the others).
    await t.dataSource.query(`UPDATE webhook_deliveries SET next_attempt_at = now() + interval '3 days'`);
    await lostDeliveries('line', 1, '/line', null, '-1 day');
    await t.dataSource.query(
      `INSERT INTO webhook_deliveries (id, task_id, user_id, event_type, sequence, url, body, next_attempt_at, attempts,
                                       status, created_at, updated_at)
       SELECT gen_random_uuid(), d.task_id, d.user_id, 'task.progress', d.sequence + n, d.url, d.body,
              d.next_attempt_at, CASE WHEN n > 3 THEN 2 ELSE 0 END, CASE WHEN n > 3 THEN 'failed' ELSE 'pending' END,
              d.created_at, d.updated_at
         FROM webhook_deliveries d, generate_series(1, 5) n WHERE d.user_id = 'line'`,
    );
    const taken = await t.app.get(WebhookDeliveriesRepository).takeOverdue(-2 * 86_400_000, 100);
    const lineRows = await t.dataSource.query<{ id: string; sequence: number; attempts: number }[]>(
      `SELECT id, sequence, attempts FROM webhook_deliveries WHERE user_id = 'line' ORDER BY sequence`,
    );
    const head = lineRows[0];
    const retries = lineRows.filter((r) => r.attempts > 0).map((r) => r.id);
    expect(taken.map((r) => r.id).sort()).toEqual([head.id, ...retries].sort());
  });

  it('reaches a lost delivery behind a long line that a slow receiver holds up', async () => {
    // One task's 600 events to a receiver that takes a second per answer: sent in order, one at a time, so most of
    // them stay overdue for minutes while their jobs wait their turn.
    let slow = true;
    const waiting = new Set<() => void>();
    receiver.answer(async (req, _n, res) => {
      if (req.path === '/slow' && slow) {
        await new Promise<void>((resolve) => {
          waiting.add(resolve);
          setTimeout(resolve, 1000);
        });
      }
      res.writeHead(204).end();
    });
    try {
      await lostDeliveries('slow', 1, '/slow', null, '1 hour');
      await t.dataSource.query(
        `INSERT INTO webhook_deliveries (id, task_id, user_id, event_type, sequence, url, body, next_attempt_at,
                                         created_at, updated_at)
         SELECT gen_random_uuid(), d.task_id, d.user_id, 'task.progress', d.sequence + n, d.url, d.body,
                d.next_attempt_at, d.created_at, d.updated_at
           FROM webhook_deliveries d, generate_series(1, 599) n WHERE d.user_id = 'slow'`,
      );
      await lostDeliveries('alice', 1, '/good', null, '1 minute');
      await receiver.waitFor((all) => all.some((r) => r.path === '/good'), 20000);
      expect(receiver.on('/slow').length).toBeLessThan(30);
    } finally {
      // The line's sender goes on until the line is empty: let it finish at once.
      slow = false;
      for (const resolve of waiting) resolve();
    }
  }, 60000);
});

describe('per-destination-host delivery rate', () => {
  it('holds deliveries to one host to WEBHOOK_HOST_RATE_PER_SECOND across workers, delayed in order, never failed', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `whrate${process.pid}`;
    const busy = await WebhookReceiver.start();
    const other = await WebhookReceiver.start('127.0.0.2');
    const env = { WEBHOOK_SECRET: DEPLOYMENT_SECRET, WEBHOOK_HOST_RATE_PER_SECOND: '5' };
    // Two worker processes of one deployment: the count is shared in Redis, not kept per process.
    const one = await TestApp.start({ database, redisPrefix, env });
    const two = await TestApp.start({ database, redisPrefix, env: { ...env, APP_ROLE: 'worker' }, listen: false });
    try {
      const item = (url: string) => ({
        task_type: 'subtitle_generation',
        input_data: { text: 'One line. Another.' },
        webhook_url: url,
        webhook_events: LIFECYCLE,
      });
      // 10 tasks × 3 events to one host: 30 deliveries, at most 5 a second → at least six one-second windows.
      const res = await one.request('POST', `${BASE}/batch`, {
        body: Array.from({ length: 10 }, (_, i) => item(`${busy.url}/t${i}`)),
      });
      expect(res.status).toBe(202);
      // Another host is not held back by the busy one.
      const solo = await one.request('POST', `${BASE}/batch`, { body: [item(`${other.url}/solo`)] });
      expect(solo.status).toBe(202);
      await other.waitFor((all) => all.length === 3, 10000);
      const otherDone = Math.max(...other.received.map((r) => r.at));

      const got = await busy.waitFor((all) => all.length === 30, 20000);
      const times = got.map((r) => r.at).sort((a, b) => a - b);
      // Windows of one second, five each: the 26th is at least five window starts after the first.
      expect(times[29] - times[0]).toBeGreaterThan(4000);
      // The other host's three were not put behind the busy host's line (which takes five seconds and more).
      expect(otherDone).toBeLessThan(times[20]);
      for (let i = 0; i + 10 < times.length; i++) expect(times[i + 10] - times[i]).toBeGreaterThan(1000);
      // Each task's events still arrive in sequence order, each delivered at its first attempt.
      for (let i = 0; i < 10; i++) {
        expect(got.filter((r) => r.path === `/t${i}`).map((r) => r.json.event_type)).toEqual(LIFECYCLE);
      }
      // The receiver has every request; each row is marked once its answer is back (a moment later on a busy machine).
      const rows = await waitUntil(
        'every delivery to be marked',
        () =>
          one.dataSource.query<{ status: string; attempts: number }[]>(
            `SELECT status, attempts FROM webhook_deliveries`,
          ),
        { intervalMs: 50, until: (list) => list.length === 33 && list.every((r) => r.status !== 'pending') },
      );
      expect(rows).toHaveLength(33);
      expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
    } finally {
      await two.close();
      await one.close();
      await busy.close();
      await other.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  }, 60000);
});

describe('webhooks sent at commit by the process that commits the event', () => {
  const env = { WEBHOOK_SECRET: DEPLOYMENT_SECRET, RECONCILE_INTERVAL_MS: '200', RECONCILE_GRACE_MS: '100' };
  let database: { name: string; url: string };
  let redisPrefix: string;
  let receiver: WebhookReceiver;
  const apps: TestApp[] = [];

  beforeEach(async () => {
    database = await createTestDatabase();
    redisPrefix = `whnow${process.pid}${apps.length}`;
    receiver = await WebhookReceiver.start();
  });
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
    await receiver.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  const start = async (over: Record<string, string> = {}, listen = true): Promise<TestApp> => {
    const app = await TestApp.start({ database, redisPrefix, env: { ...env, ...over }, listen });
    apps.push(app);
    return app;
  };

  const submit = async (app: TestApp, path: string, events = LIFECYCLE): Promise<string> => {
    const res = await app.request('POST', `${BASE}/subtitles/generate`, {
      body: { text: 'Sent at once.', webhook_url: `${receiver.url}${path}`, webhook_events: events },
    });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };

  const rowsOf = (app: TestApp) =>
    app.dataSource.query<{ id: string; status: string; attempts: number }[]>(
      `SELECT id, status, attempts FROM webhook_deliveries ORDER BY task_id, sequence`,
    );

  it('an API process sends task.created itself, with no worker anywhere and no job added', async () => {
    const api = await start({ APP_ROLE: 'api' });
    const taskId = await submit(api, '/created', ['task.created']);
    const [got] = await receiver.waitFor((all) => all.length === 1);
    expect([got.path, got.json.event_type, got.json.task_id]).toEqual(['/created', 'task.created', taskId]);
    const [row] = await waitUntil('the attempt to be recorded', () => rowsOf(api), {
      until: (rows) => rows[0]?.status === 'delivered',
    });
    expect(row).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(got.headers['webhook-id']).toBe(row.id);
    expect(await countQueueEntries({ database, redisPrefix }, row.id)).toBe(0);
  });

  it('delivers every event once, in order per task, from API and worker processes, with the webhooks queue paused', async () => {
    // A pool of 20: up to 10 lines sent at commit per process, more than the worker's 4 tasks at once.
    const api = await start({ APP_ROLE: 'api', DATABASE_POOL_SIZE: '20' });
    await start({ APP_ROLE: 'worker', DATABASE_POOL_SIZE: '20' }, false);
    // No webhook job runs: whatever arrives was sent at commit (or by a sender's line after it).
    const paused = await api.request('POST', '/api/v1/queue/webhooks/pause', {
      token: api.token('root', { admin: true }),
    });
    expect(paused.status).toBe(200);
    const tasks: string[] = [];
    for (let i = 0; i < 12; i++) tasks.push(await submit(api, `/t${i}`));
    const got = await receiver.waitFor((all) => all.length >= tasks.length * LIFECYCLE.length, 20000);
    for (let i = 0; i < tasks.length; i++) {
      expect(got.filter((r) => r.path === `/t${i}`).map((r) => r.json.event_type)).toEqual(LIFECYCLE);
    }
    // Each once: no sender sent a delivery another one had claimed, and the reconciler's sweeps (every 200 ms)
    // found nothing overdue to send again.
    await sleep(1000);
    const ids = receiver.received.map((r) => r.headers['webhook-id']);
    expect(ids).toHaveLength(tasks.length * LIFECYCLE.length);
    expect(new Set(ids).size).toBe(ids.length);
    const rows = await rowsOf(api);
    expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
  }, 60000);

  it('delivers by the fallback, in order and once, the events whose send at commit never happened', async () => {
    const app = await start();
    // What a process that dies right after its commits leaves: the rows, no attempt, no job.
    const skipped: string[] = [];
    jest.spyOn(app.app.get(WebhookDispatch), 'dispatch').mockImplementation((id) => void skipped.push(id));
    await submit(app, '/skipped');
    await waitUntil('the three events to be committed', () => skipped.length, { until: (n) => n === 3 });
    // The reconciler finds the line's head overdue; its job sends the line in sequence order.
    const got = await receiver.waitFor((all) => all.length >= 3, 15000);
    expect(got.map((r) => r.json.event_type)).toEqual(LIFECYCLE);
    expect(got.map((r) => r.headers['webhook-id'])).toEqual(skipped);
    await sleep(500);
    expect(receiver.received).toHaveLength(3);
  }, 30000);
});
