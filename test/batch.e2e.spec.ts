import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { BatchesRepository } from '../src/batches/batches.repository';
import { TaskStatus } from '../src/tasks/task.enums';
import { factory } from './support/factories';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const BATCH = '/api/v1/media/batch';
const DEPLOYMENT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const BATCH_SECRET = 'a-batch-secret-of-its-own-0123';
const FAST = { PROVIDER_POLL_SCALE: '0.02' };

/** A subtitle task: the built-in engine runs it in milliseconds. */
const subtitle = (text = 'Hi.', extra: Record<string, unknown> = {}) => ({
  task_type: 'subtitle_generation',
  input_data: { text },
  ...extra,
});

describe('batch', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    [t, receiver] = await Promise.all([
      TestApp.start({ sandbox: true, env: { ...FAST, WEBHOOK_SECRET: DEPLOYMENT_SECRET } }),
      WebhookReceiver.start(),
    ]);
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await t.dataSource.query<{ n: string }[]>(sql, params))[0].n);
  const countTasks = (user: string) => count(`SELECT count(*) AS n FROM tasks WHERE user_id = $1`, [user]);
  const countBatches = (user: string) => count(`SELECT count(*) AS n FROM batches WHERE user_id = $1`, [user]);

  async function waitForBatch(id: string, as: string, predicate: (b: any) => boolean, timeoutMs = 20000) {
    const read = async () => {
      const res = await t.request('GET', `${BATCH}/${id}`, { as });
      expect(res.status).toBe(200);
      return res.body;
    };
    return waitUntil(`batch ${id} to match`, read, { timeoutMs, intervalMs: 100, until: predicate });
  }

  it('creates 50 mixed tasks in one batch, and its counts move to completed', async () => {
    const items = Array.from({ length: 50 }, (_, i) =>
      i % 5 === 0
        ? { task_type: 'image_generation', input_data: { prompt: `a lighthouse, take ${i}` }, priority: 'high' }
        : subtitle(`Line ${i}. Another line.`, { priority: i % 2 ? 'low' : 'urgent', metadata: { i } }),
    );
    const res = await t.request('POST', BATCH, { as: 'bea', body: items });
    expect(res.status).toBe(202);
    const batchId = res.body.batch_id as string;
    expect(res.body.status_url).toBe(`${BATCH}/${batchId}`);
    expect(res.body.tasks).toHaveLength(50);
    expect(res.body.tasks.every((x: any) => x.status === 'queued')).toBe(true);
    expect(new Set(res.body.tasks.map((x: any) => x.id)).size).toBe(50);

    const rows = await t.dataSource.query<{ id: string; type: string }[]>(
      `SELECT id, type FROM tasks WHERE batch_id = $1`,
      [batchId],
    );
    expect(rows).toHaveLength(50);
    expect(rows.filter((r) => r.type === 'image_generation')).toHaveLength(10);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(res.body.tasks.map((x: any) => x.id)));

    const done = await waitForBatch(batchId, 'bea', (b) => b.counts.completed === 50 && b.completed_at !== null);
    expect(done).toMatchObject({
      id: batchId,
      total: 50,
      counts: { queued: 0, processing: 0, completed: 50, failed: 0, cancelled: 0 },
      metadata: null,
    });
    expect(done.tasks).toHaveLength(50);
    expect(done.tasks[0]).toEqual(expect.objectContaining({ type: expect.any(String), status: 'completed' }));
    expect(Date.parse(done.completed_at)).toBeGreaterThanOrEqual(Date.parse(done.created_at));
  });

  it('refuses 51 items (400 saying so) and an empty batch, creating nothing', async () => {
    const many = await t.request('POST', BATCH, { as: 'max', body: Array.from({ length: 51 }, () => subtitle()) });
    expect(many.status).toBe(400);
    expect(many.body.message).toMatch(/at most 50/);
    const none = await t.request('POST', BATCH, { as: 'max', body: { tasks: [] } });
    expect(none.status).toBe(400);
    expect((await t.request('POST', BATCH, { as: 'max', body: 'nope' })).status).toBe(400);
    expect(await countTasks('max')).toBe(0);
    expect(await countBatches('max')).toBe(0);
  });

  it('lists every bad item by index and field, and creates nothing', async () => {
    const items: Record<string, unknown>[] = Array.from({ length: 10 }, () => subtitle());
    items[3] = { task_type: 'subtitle_generation', input_data: { text: 5 } };
    items[7] = { task_type: 'no_such_type', input_data: {} };
    items[8] = subtitle('Hi.', { webhook_url: 'ftp://example.com/hook' });
    items[9] = { task_type: 'subtitle_generation', input_data: { text: 'Hi.', provider: 'nope', surprise: 1 } };
    const res = await t.request('POST', BATCH, { as: 'bad', body: { tasks: items } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
    const errors = res.body.errors as { index: number; field: string; message: string }[];
    expect([...new Set(errors.map((e) => e.index))]).toEqual([3, 7, 8, 9]);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 3, field: 'input_data.text' }),
        expect.objectContaining({ index: 7, field: 'task_type' }),
        expect.objectContaining({ index: 8, field: 'webhook_url' }),
        expect.objectContaining({ index: 9, field: 'input_data.surprise' }),
      ]),
    );
    // A service-level check (unknown provider), reached once the DTO passes.
    const provider = await t.request('POST', BATCH, {
      as: 'bad',
      body: [subtitle(), { task_type: 'subtitle_generation', input_data: { text: 'Hi.', provider: 'nope' } }],
    });
    expect(provider.status).toBe(400);
    expect(provider.body.errors).toEqual([
      { index: 1, field: 'input_data.provider', message: 'tasks[1]: provider "nope" is unknown' },
    ]);
    expect(await countTasks('bad')).toBe(0);
    expect(await countBatches('bad')).toBe(0);
  });

  it('takes a bare array and the object form; a batch is its owner’s (and admins’)', async () => {
    const bare = await t.request('POST', BATCH, { as: 'ann', body: [subtitle(), subtitle('Bye.')] });
    expect(bare.status).toBe(202);
    const object = await t.request('POST', BATCH, {
      as: 'ann',
      body: { tasks: [subtitle()], metadata: { order: 'A-17' } },
    });
    expect(object.status).toBe(202);
    const got = await t.request('GET', object.body.status_url, { as: 'ann' });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: object.body.batch_id, total: 1, metadata: { order: 'A-17' } });
    expect(got.body.tasks.map((x: any) => x.id)).toEqual([object.body.tasks[0].id]);
    expect((await t.request('GET', bare.body.status_url, { as: 'ann' })).body.total).toBe(2);

    expect((await t.request('GET', bare.body.status_url, { as: 'eve' })).status).toBe(404);
    expect((await t.request('GET', `${BATCH}/${randomUUID()}`, { as: 'ann' })).status).toBe(404);
    expect((await t.request('GET', `${BATCH}/not-a-uuid`, { as: 'ann' })).status).toBe(404);
    const admin = await t.request('GET', bare.body.status_url, { token: t.token('root', { admin: true }) });
    expect(admin.status).toBe(200);
  });

  it("lists the caller's batches newest first, in pages, without their tasks or another user's; scope=all for admins", async () => {
    const submit = async (as: string, body: unknown) => {
      const res = await t.request('POST', BATCH, { as, body });
      expect(res.status).toBe(202);
      return res.body.batch_id as string;
    };
    const oldest = await submit('lena', {
      tasks: [subtitle('One.'), subtitle('Two.')],
      webhook_url: `${receiver.url}/batch-list`,
      webhook_secret: BATCH_SECRET,
      metadata: { run: 1 },
    });
    const middle = await submit('lena', [subtitle('Three.')]);
    const newest = await submit('lena', [subtitle('Four.')]);
    const others = await submit('milo', [subtitle('Five.')]);

    const first = await t.request('GET', `${BATCH}?limit=2`, { as: 'lena' });
    expect(first.status).toBe(200);
    expect(first.body.data.map((b: any) => b.id)).toEqual([newest, middle]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await t.request('GET', `${BATCH}?limit=2&cursor=${first.body.next_cursor}`, { as: 'lena' });
    expect(second.status).toBe(200);
    expect(second.body.data.map((b: any) => b.id)).toEqual([oldest]);
    expect(second.body.next_cursor).toBeNull();

    // An item is the batch as GET /batch/{id} shows it, less its tasks.
    const done = await waitForBatch(oldest, 'lena', (b) => b.completed_at !== null);
    const listed = (await t.request('GET', BATCH, { as: 'lena' })).body.data;
    expect(listed.map((b: any) => b.id)).toEqual([newest, middle, oldest]);
    const { tasks, ...summary } = done;
    expect(tasks).toHaveLength(2);
    expect(listed[2]).toEqual(summary);
    expect(listed[2]).toMatchObject({
      total: 2,
      counts: { queued: 0, processing: 0, completed: 2, failed: 0, cancelled: 0 },
      webhook_url: `${receiver.url}/batch-list`,
      metadata: { run: 1 },
    });
    expect(Object.keys(listed[0]).sort()).toEqual([
      'completed_at',
      'counts',
      'created_at',
      'id',
      'metadata',
      'total',
      'webhook_url',
    ]);
    expect(listed[0]).toMatchObject({ total: 1, webhook_url: null, metadata: null });

    const refused = await t.request('GET', `${BATCH}?scope=all`, { as: 'lena' });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe('scope=all is for admins');
    const all = await t.request('GET', `${BATCH}?scope=all&limit=100`, { token: t.token('root', { admin: true }) });
    expect(all.status).toBe(200);
    expect(all.body.data.map((b: any) => b.id)).toEqual(expect.arrayContaining([newest, middle, oldest, others]));
    const created = all.body.data.map((b: any) => b.created_at);
    expect(created).toEqual([...created].sort().reverse());
    expect((await t.request('GET', BATCH, { as: 'milo' })).body.data.map((b: any) => b.id)).toEqual([others]);

    for (const query of ['limit=101', 'limit=0', 'cursor=not-a-cursor', 'scope=everyone']) {
      const bad = await t.request('GET', `${BATCH}?${query}`, { as: 'lena' });
      expect([query, bad.status]).toEqual([query, 400]);
    }
  });

  it('sends batch.completed once, signed, to the batch URL after every task has finished', async () => {
    const res = await t.request('POST', BATCH, {
      as: 'wes',
      body: {
        tasks: Array.from({ length: 12 }, (_, i) => subtitle(`Line ${i}.`)),
        webhook_url: `${receiver.url}/batch-own`,
        webhook_secret: BATCH_SECRET,
        metadata: { run: 7 },
      },
    });
    expect(res.status).toBe(202);
    const batchId = res.body.batch_id as string;
    await receiver.waitFor((all) => all.some((r) => r.path === '/batch-own'), 20000);
    const [hook] = receiver.on('/batch-own');
    // Each task checks whether the batch is complete after its last transition, before its job ends: once every
    // job has ended, a second batch.completed would have been written, and its delivery done.
    const taskIds = (await t.request('GET', `${BATCH}/${batchId}`, { as: 'wes' })).body.tasks.map((x: any) => x.id);
    for (const id of taskIds as string[]) await t.waitForTaskJobEnded(id);
    const batchDeliveries = () =>
      t.dataSource.query<{ status: string }[]>(`SELECT status FROM webhook_deliveries WHERE batch_id = $1`, [batchId]);
    const rows = await waitUntil('the batch delivery to be marked', batchDeliveries, {
      until: (list) => list.every((d) => d.status === 'delivered'),
    });
    expect(rows).toHaveLength(1);
    const hooks = receiver.on('/batch-own');
    expect(hooks).toHaveLength(1);
    expect(hook.json).toEqual({
      event_type: 'batch.completed',
      batch_id: batchId,
      timestamp: expect.any(String),
      data: { total: 12, counts: { queued: 0, processing: 0, completed: 12, failed: 0, cancelled: 0 } },
      user_id: 'wes',
      metadata: { run: 7 },
    });
    expect(hook.headers['x-webhook-event']).toBe('batch.completed');
    expect(() => new Webhook(BATCH_SECRET, { format: 'raw' }).verify(hook.body, hook.headers as never)).not.toThrow();
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(hook.body, hook.headers as never)).toThrow();

    // It went after the last task finished.
    const batch = await waitForBatch(batchId, 'wes', (b) => b.completed_at !== null);
    const lastFinished = Math.max(...batch.tasks.map((x: any) => Date.parse(x.completed_at)));
    expect(hook.at).toBeGreaterThanOrEqual(lastFinished);
    expect(Date.parse(hook.json.timestamp)).toBeGreaterThanOrEqual(lastFinished);
    const deliveries = await t.dataSource.query<{ id: string; task_id: string | null; sequence: number }[]>(
      `SELECT id, task_id, sequence FROM webhook_deliveries WHERE batch_id = $1`,
      [batchId],
    );
    expect(deliveries).toEqual([{ id: hook.headers['webhook-id'], task_id: null, sequence: 1 }]);
    // Its secret never comes back.
    expect(JSON.stringify(batch)).not.toContain(BATCH_SECRET);
  });

  it('signs with WEBHOOK_SECRET when the batch has no secret, and counts a cancelled task', async () => {
    // The addaudio job never finishes at the emulator, so it is still running (or queued) when cancelled.
    t.sandbox!.knobs.stuckRate = 1;
    try {
      const res = await t.request('POST', BATCH, {
        as: 'wes',
        body: {
          tasks: [
            subtitle(),
            {
              task_type: 'addaudio',
              input_data: { url_video: `${receiver.url}/v.mp4`, url_audio: `${receiver.url}/a.mp3` },
            },
          ],
          webhook_url: `${receiver.url}/batch-deployment`,
        },
      });
      expect([res.status, res.body.message]).toEqual([202, undefined]);
      await t.waitForTask(res.body.tasks[0].id, (x) => x.status === 'completed');
      // The completed task checked whether the batch was complete before its job ended: it was not.
      await t.waitForTaskJobEnded(res.body.tasks[0].id);
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM webhook_deliveries WHERE batch_id = $1`,
        [res.body.batch_id],
      );
      expect(n).toBe(0);
      expect(receiver.on('/batch-deployment')).toHaveLength(0);
      const cancel = await t.request('POST', `/api/v1/media/tasks/${res.body.tasks[1].id}/cancel`, { as: 'wes' });
      expect(cancel.status).toBe(200);
    } finally {
      t.sandbox!.knobs.stuckRate = 0;
    }
    await receiver.waitFor((all) => all.some((r) => r.path === '/batch-deployment'), 20000);
    const [hook] = receiver.on('/batch-deployment');
    expect(hook.json.data).toEqual({
      total: 2,
      counts: { queued: 0, processing: 0, completed: 1, failed: 0, cancelled: 1 },
    });
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(hook.body, hook.headers as never)).not.toThrow();
  });

  it('closes a batch once when its last tasks finish together, and not while one is unfinished', async () => {
    const batchId = randomUUID();
    await t.dataSource.query(
      `INSERT INTO batches (id, user_id, webhook_url, total, created_at) VALUES ($1, 'rae', $2, 3, now())`,
      [batchId, `${receiver.url}/race`],
    );
    const statuses = [TaskStatus.Completed, TaskStatus.Failed, TaskStatus.Processing];
    const tasks = await Promise.all(
      statuses.map((status) => factory.task(t.dataSource, { userId: 'rae', batchId, status })),
    );
    const batches = t.app.get(BatchesRepository);
    expect(await batches.closeIfFinished(batchId)).toBeNull();
    await t.dataSource.query(`UPDATE tasks SET status = 'cancelled' WHERE id = $1`, [tasks[2].id]);
    const closes = await Promise.all(Array.from({ length: 8 }, () => batches.closeIfFinished(batchId)));
    const won = closes.filter((c) => c !== null);
    expect(won).toHaveLength(1);
    const [delivery] = await t.dataSource.query<{ id: string; body: string; event_type: string }[]>(
      `SELECT id, body, event_type FROM webhook_deliveries WHERE batch_id = $1`,
      [batchId],
    );
    expect(won[0].deliveryId).toBe(delivery.id);
    expect(delivery.event_type).toBe('batch.completed');
    expect(JSON.parse(delivery.body).data).toEqual({
      total: 3,
      counts: { queued: 0, processing: 0, completed: 1, failed: 1, cancelled: 1 },
    });
  });

  it('lets the reconciler close a batch whose completion check was lost', async () => {
    const batchId = randomUUID();
    await t.dataSource.query(
      `INSERT INTO batches (id, user_id, webhook_url, total, created_at) VALUES ($1, 'rex', $2, 2, now())`,
      [batchId, `${receiver.url}/lost`],
    );
    // Both tasks ended, but nothing ran the completion check (a process died in between).
    for (const status of [TaskStatus.Completed, TaskStatus.Completed]) {
      await factory.task(t.dataSource, { userId: 'rex', batchId, status });
    }
    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.batchesClosed).toBeGreaterThanOrEqual(1);
    const [row] = await t.dataSource.query<{ completed_at: Date | null }[]>(
      `SELECT completed_at FROM batches WHERE id = $1`,
      [batchId],
    );
    expect(row.completed_at).not.toBeNull();
    const got = await receiver.waitFor((all) => all.some((r) => r.path === '/lost'));
    expect(got.filter((r) => r.path === '/lost')).toHaveLength(1);
    expect((await t.app.get(ReconcilerProcessor).reconcile()).batchesClosed).toBe(0);
  });

  it('refuses a batch webhook_url the URL guard refuses', async () => {
    const res = await t.request('POST', BATCH, {
      as: 'gus',
      body: { tasks: [subtitle()], webhook_url: 'http://user:pass@example.com/hook' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('webhook_url');
    expect(await countTasks('gus')).toBe(0);
  });

  it('is in the OpenAPI document', async () => {
    const docs = await t.request('GET', '/docs-json', { token: null });
    expect(docs.status).toBe(200);
    expect(Object.keys(docs.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/media/batch', '/api/v1/media/batch/{id}']),
    );
    expect(docs.body.paths['/api/v1/media/batch'].get.operationId).toBe('listBatches');
  });

  it('answers 413 to a body over 1 MiB', async () => {
    const res = await t.request('POST', BATCH, {
      as: 'big',
      body: Array.from({ length: 2 }, () => subtitle('x'.repeat(600 * 1024))),
    });
    expect(res.status).toBe(413);
    expect(await countTasks('big')).toBe(0);
  });

  it('answers the same batch again to the same Idempotency-Key', async () => {
    const headers = { 'idempotency-key': 'batch-order-1' };
    const body = { tasks: [subtitle(), subtitle('Two.')] };
    const first = await t.request('POST', BATCH, { as: 'ida', headers, body });
    expect(first.status).toBe(202);
    const again = await t.request('POST', BATCH, { as: 'ida', headers, body });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await countBatches('ida')).toBe(1);
    expect(await countTasks('ida')).toBe(2);
  });
});

describe('batch without WEBHOOK_SECRET', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a batch webhook_url with no secret to sign with, and takes one with its own secret', async () => {
    const tasks = [subtitle()];
    const refused = await t.request('POST', BATCH, { body: { tasks, webhook_url: 'https://example.com/hook' } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'webhook_secret' })]);
    const item = await t.request('POST', BATCH, {
      body: [subtitle('Hi.', { webhook_url: 'https://example.com/hook' })],
    });
    expect(item.status).toBe(400);
    expect(item.body.errors).toEqual([expect.objectContaining({ index: 0, field: 'webhook_secret' })]);
    const ok = await t.request('POST', BATCH, {
      body: { tasks, webhook_url: 'https://example.com/hook', webhook_secret: BATCH_SECRET },
    });
    expect(ok.status).toBe(202);
  });
});
