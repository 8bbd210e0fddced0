import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';

const BASE = '/api/v1/media';
const SUBTITLES = `${BASE}/subtitles/generate`;

describe('Idempotency-Key and Prefer: wait (workers running)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
  });

  const countTasks = async (user: string) =>
    Number((await t.dataSource.query(`SELECT count(*) AS n FROM tasks WHERE user_id = $1`, [user]))[0].n);

  it('answers the first response again to the same key and body, marked as replayed', async () => {
    const headers = { 'idempotency-key': 'order-1001' };
    const first = await t.request('POST', SUBTITLES, { as: 'ida', headers, body: { text: 'Once.', format: 'srt' } });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // The same body with its keys in another order is the same request.
    const again = await t.request('POST', SUBTITLES, { as: 'ida', headers, body: { format: 'srt', text: 'Once.' } });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await countTasks('ida')).toBe(1);
  });

  it('refuses the same key with another body (422), and keeps keys apart per user', async () => {
    const headers = { 'idempotency-key': 'shared-key' };
    expect((await t.request('POST', SUBTITLES, { as: 'ivy', headers, body: { text: 'A.' } })).status).toBe(202);
    const other = await t.request('POST', SUBTITLES, { as: 'ivy', headers, body: { text: 'B.' } });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: 'idempotency_key_reused' });
    const bob = await t.request('POST', SUBTITLES, { as: 'ian', headers, body: { text: 'B.' } });
    expect(bob.status).toBe(202);
    expect(await countTasks('ivy')).toBe(1);
    expect(await countTasks('ian')).toBe(1);
  });

  it('creates exactly one task from ten concurrent requests with one key', async () => {
    const headers = { 'idempotency-key': 'burst-1' };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => t.request('POST', SUBTITLES, { as: 'isa', headers, body: { text: 'Burst.' } })),
    );
    expect(await countTasks('isa')).toBe(1);
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(new Set(accepted.map((a) => a.body.id)).size).toBe(1);
    for (const a of answers.filter((x) => x.status !== 202)) {
      expect(a.status).toBe(409);
      expect(a.body.message).toMatch(/still in progress/);
    }
  });

  it('frees the key of a request that failed, and refuses a malformed key', async () => {
    const headers = { 'idempotency-key': 'fix-and-retry' };
    const bad = await t.request('POST', SUBTITLES, { as: 'iris', headers, body: { text: 'x', format: 'doc' } });
    expect(bad.status).toBe(400);
    const good = await t.request('POST', SUBTITLES, { as: 'iris', headers, body: { text: 'Fixed.' } });
    expect(good.status).toBe(202);
    const long = await t.request('POST', SUBTITLES, {
      headers: { 'idempotency-key': 'k'.repeat(256) },
      body: { text: 'Hi.' },
    });
    expect(long.status).toBe(400);
    expect(long.body.message).toMatch(/Idempotency-Key/);
  });

  it('holds the answer with Prefer: wait until the task finishes, then answers 200 with it', async () => {
    const res = await t.request('POST', SUBTITLES, { headers: { prefer: 'wait=10' }, body: { text: 'Wait for me.' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('preference-applied')).toBe('wait=10');
    expect(res.body).toMatchObject({ status: 'completed', progress: 1 });
    expect(res.body.output.files[0].url).toMatch(/^\/files\//);
  });

  it('replays a waited answer (200) to the same key', async () => {
    const opts = { headers: { prefer: 'wait=10', 'idempotency-key': 'waited' }, body: { text: 'Waited.' } };
    const first = await t.request('POST', SUBTITLES, opts);
    expect(first.status).toBe(200);
    const again = await t.request('POST', SUBTITLES, opts);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
  });

  it('refuses a wait over 60 s or not a number (400), creating nothing', async () => {
    for (const prefer of ['wait=999', 'wait=soon', 'wait=-1']) {
      const res = await t.request('POST', SUBTITLES, { as: 'ira', headers: { prefer }, body: { text: 'No.' } });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/Prefer: wait/);
    }
    expect(await countTasks('ira')).toBe(0);
  });

  it('sweeps idempotency keys past their 24 hours', async () => {
    await t.dataSource.query(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, state, created_at)
       VALUES ('old', 'stale', 'h', 'done', now() - interval '25 hours'),
              ('old', 'fresh', 'h', 'done', now() - interval '1 hour')`,
    );
    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.idempotencyKeysSwept).toBeGreaterThanOrEqual(1);
    const left = await t.dataSource.query(`SELECT key FROM idempotency_keys WHERE user_id = 'old'`);
    expect(left).toEqual([{ key: 'fresh' }]);
  });
});

describe('Prefer: wait with no worker running', () => {
  it('answers 202 with the queued task once the wait is over', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `waitapi${process.pid}`;
    const api = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'api' } });
    try {
      const started = Date.now();
      const res = await api.request('POST', SUBTITLES, { headers: { prefer: 'wait=1' }, body: { text: 'Later.' } });
      expect(res.status).toBe(202);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(res.headers.get('preference-applied')).toBe('wait=1');
      expect(res.body.status).toBe('queued');
    } finally {
      await api.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });
});
