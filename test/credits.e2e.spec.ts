import { TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { SubtitleEngineProvider, TestApp } from './support/test-app';

const BASE = '/api/v1/media';
const CREDITS = '/api/v1/credits';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');

describe('credits', () => {
  const images = new ScriptedProvider('painter', [TaskType.ImageGeneration], ['ok'], {
    artifacts: [{ contentType: 'image/png', data: PNG, filename: 'fox.png' }],
  });
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [images, new SubtitleEngineProvider()],
      env: {
        CREDITS_ENABLED: 'true',
        CREDITS_PRICES: 'image_generation=5,subtitle_generation=1',
        CACHE_ENABLED: 'true',
      },
    });
    admin = t.token('root', { admin: true });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => images.setScript(['ok']));

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await t.dataSource.query<{ n: string }[]>(sql, params))[0].n);
  const grant = async (user: string, amount: number) => {
    const res = await t.request('POST', `${CREDITS}/${user}/grant`, { token: admin, body: { amount, reason: 'test' } });
    expect(res.status).toBe(201);
    return res.body.balance as number;
  };
  const balanceOf = async (user: string) => {
    const res = await t.request('GET', CREDITS, { as: user });
    expect(res.status).toBe(200);
    return res.body.balance as number;
  };
  /** The user's ledger, oldest first, as [kind, amount] pairs. */
  const ledgerOf = async (user: string) =>
    (
      await t.dataSource.query<{ kind: string; amount: number }[]>(
        `SELECT kind, amount FROM credit_entries WHERE user_id = $1 ORDER BY id`,
        [user],
      )
    ).map((e) => [e.kind, e.amount]);
  const submitImage = (as: string, prompt: string, extra: Record<string, unknown> = {}) =>
    t.request('POST', `${BASE}/images/generate`, { as, body: { prompt, ...extra } });

  it('refuses a submit short of its price with 403 and the reason, and writes nothing', async () => {
    expect(await grant('ann', 2)).toBe(2);
    const deliveriesBefore = await count(`SELECT count(*) AS n FROM webhook_deliveries`);
    const res = await submitImage('ann', 'a fox', {
      webhook_url: 'http://127.0.0.1:9/hook',
      webhook_secret: 'a-secret-of-the-task-0123',
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({
      statusCode: 403,
      code: 'insufficient_credits',
      message: 'needs 5 credits, balance 2',
      required: 5,
      balance: 2,
    });
    expect(await count(`SELECT count(*) AS n FROM tasks WHERE user_id = 'ann'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM webhook_deliveries`)).toBe(deliveriesBefore);
    expect(await ledgerOf('ann')).toEqual([['grant', 2]]);
    expect(await balanceOf('ann')).toBe(2);

    // Nothing ever granted: balance 0.
    const none = await submitImage('nobody', 'a fox');
    expect(none.status).toBe(403);
    expect(none.body).toMatchObject({ required: 5, balance: 0, message: 'needs 5 credits, balance 0' });
  });

  it('accepts exactly as many of 50 concurrent submits as the balance pays for', async () => {
    await grant('bob', 10);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.request('POST', `${BASE}/subtitles/generate`, { as: 'bob', body: { text: `Line ${i} of fifty.` } }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(10);
    expect(statuses.filter((s) => s === 403)).toHaveLength(40);
    expect(answers.find((a) => a.status === 403)!.body).toMatchObject({ code: 'insufficient_credits', balance: 0 });
    expect(await count(`SELECT count(*) AS n FROM tasks WHERE user_id = 'bob'`)).toBe(10);
    expect(await count(`SELECT count(*) AS n FROM credit_entries WHERE user_id = 'bob' AND kind = 'hold'`)).toBe(10);
    expect(await balanceOf('bob')).toBe(0);
    // Each accepted task completes and spends its hold.
    for (const { body } of answers.filter((a) => a.status === 202)) {
      await t.waitForTask(body.id as string, (x) => x.status === 'completed');
    }
    expect(await count(`SELECT count(*) AS n FROM credit_entries WHERE user_id = 'bob' AND kind = 'capture'`)).toBe(10);
    expect(await balanceOf('bob')).toBe(0);
  });

  it('captures the hold of a completed task', async () => {
    await grant('cat', 7);
    const res = await submitImage('cat', 'a completed fox');
    expect(res.status).toBe(202);
    expect(await balanceOf('cat')).toBe(2);
    await t.waitForTask(res.body.id as string, (x) => x.status === 'completed');
    expect(await balanceOf('cat')).toBe(2);
    expect(await ledgerOf('cat')).toEqual([
      ['grant', 7],
      ['hold', 5],
      ['capture', 5],
    ]);
  });

  it('gives a failed task its credits back, and holds them again on a retry (or refuses it with 403)', async () => {
    await grant('dan', 6);
    images.setScript(['permanent']);
    const res = await submitImage('dan', 'a refused fox');
    const id = res.body.id as string;
    await t.waitForTask(id, (x) => x.status === 'failed');
    expect(await balanceOf('dan')).toBe(6);
    expect(await ledgerOf('dan')).toEqual([
      ['grant', 6],
      ['hold', 5],
      ['release', 5],
    ]);

    // Spend most of it elsewhere: the retry is then short and the task stays failed.
    images.setScript(['ok']);
    const other = await submitImage('dan', 'another fox');
    await t.waitForTask(other.body.id as string, (x) => x.status === 'completed');
    await t.waitForTaskJobEnded(id);
    const short = await t.request('POST', `${BASE}/tasks/${id}/retry`, { as: 'dan' });
    expect(short.status).toBe(403);
    expect(short.body).toMatchObject({ code: 'insufficient_credits', required: 5, balance: 1 });
    expect((await t.request('GET', `${BASE}/tasks/${id}`, { as: 'dan' })).body.status).toBe('failed');

    await grant('dan', 4);
    const retried = await t.request('POST', `${BASE}/tasks/${id}/retry`, { as: 'dan' });
    expect(retried.status).toBe(202);
    expect(await balanceOf('dan')).toBe(0);
    await t.waitForTask(id, (x) => x.status === 'completed');
    const entries = await t.dataSource.query<{ kind: string; amount: number }[]>(
      `SELECT kind, amount FROM credit_entries WHERE task_id = $1 ORDER BY id`,
      [id],
    );
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['hold', 5],
      ['release', 5],
      ['hold', 5],
      ['capture', 5],
    ]);
  });

  it('gives a cancelled task its credits back', async () => {
    await grant('eve', 5);
    images.setScript([{ delayMs: 3000 }]);
    const res = await submitImage('eve', 'a slow fox');
    const id = res.body.id as string;
    await t.waitForTask(id, (x) => x.status === 'processing');
    expect(await balanceOf('eve')).toBe(0);
    const cancelled = await t.request('POST', `${BASE}/tasks/${id}/cancel`, { as: 'eve' });
    expect(cancelled.status).toBe(200);
    expect(await balanceOf('eve')).toBe(5);
    await t.waitForTaskJobEnded(id);
    expect(await ledgerOf('eve')).toEqual([
      ['grant', 5],
      ['hold', 5],
      ['release', 5],
    ]);
  });

  it('charges a result served from the cache the cache_hit price (0 by default)', async () => {
    await grant('fay', 10);
    const first = await submitImage('fay', 'a cached fox');
    await t.waitForTask(first.body.id as string, (x) => x.status === 'completed');
    const second = await submitImage('fay', 'a cached fox');
    expect(second.status).toBe(202);
    const done = await t.waitForTask(second.body.id as string, (x) => x.status === 'completed');
    expect(done.cached).toBe(true);
    expect(await balanceOf('fay')).toBe(5);
    const entries = await t.dataSource.query<{ kind: string; amount: number }[]>(
      `SELECT kind, amount FROM credit_entries WHERE task_id = $1 ORDER BY id`,
      [second.body.id],
    );
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['hold', 5],
      ['release', 5],
    ]);
  });

  it('holds the sum of a batch, or nothing', async () => {
    await grant('gus', 3);
    const item = (i: number) => ({ task_type: 'subtitle_generation', input_data: { text: `Batch line ${i}.` } });
    const tooMany = await t.request('POST', `${BASE}/batch`, { as: 'gus', body: [0, 1, 2, 3].map(item) });
    expect(tooMany.status).toBe(403);
    expect(tooMany.body).toMatchObject({ code: 'insufficient_credits', required: 4, balance: 3 });
    expect(await count(`SELECT count(*) AS n FROM batches WHERE user_id = 'gus'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM tasks WHERE user_id = 'gus'`)).toBe(0);
    expect(await balanceOf('gus')).toBe(3);

    const fits = await t.request('POST', `${BASE}/batch`, { as: 'gus', body: [4, 5, 6].map(item) });
    expect(fits.status).toBe(202);
    expect(await balanceOf('gus')).toBe(0);
    const holds = await t.dataSource.query<{ batch_id: string }[]>(
      `SELECT batch_id FROM credit_entries WHERE user_id = 'gus' AND kind = 'hold'`,
    );
    expect(holds.map((h) => h.batch_id)).toEqual([fits.body.batch_id, fits.body.batch_id, fits.body.batch_id]);
    for (const task of fits.body.tasks as { id: string }[]) {
      await t.waitForTask(task.id, (x) => x.status === 'completed');
    }
  });

  it('keeps every balance equal to its ledger, and every finished task’s hold settled', async () => {
    const sums = await t.dataSource.query<{ user_id: string; balance: number; ledger: number }[]>(
      `SELECT a.user_id, a.balance,
              (SELECT sum(CASE e.kind WHEN 'hold' THEN -e.amount WHEN 'capture' THEN 0 ELSE e.amount END)
                 FROM credit_entries e WHERE e.user_id = a.user_id)::int AS ledger
         FROM credit_accounts a`,
    );
    expect(sums.length).toBeGreaterThanOrEqual(7);
    for (const row of sums)
      expect({ user: row.user_id, balance: row.ledger }).toEqual({
        user: row.user_id,
        balance: row.balance,
      });
    const open = await t.dataSource.query<{ task_id: string; status: string; open: number }[]>(
      `SELECT e.task_id, t.status,
              sum(CASE e.kind WHEN 'hold' THEN e.amount ELSE -e.amount END)::int AS open
         FROM credit_entries e JOIN tasks t ON t.id = e.task_id
        GROUP BY e.task_id, t.status`,
    );
    expect(open.length).toBeGreaterThan(0);
    // Every task of this file has finished by now: none still holds anything.
    for (const row of open)
      expect({ task: row.task_id, status: row.status, open: row.open }).toEqual({
        task: row.task_id,
        status: expect.stringMatching(/^(completed|failed|cancelled)$/),
        open: 0,
      });
    // Append-only.
    await expect(t.dataSource.query(`UPDATE credit_entries SET amount = 0`)).rejects.toThrow(/append-only/);
  });

  it('pages the ledger, newest first, and opens other users’ ledgers and grants to admins only', async () => {
    const first = await t.request('GET', `${CREDITS}?limit=2`, { as: 'cat' });
    expect(first.status).toBe(200);
    expect(first.body.balance).toBe(2);
    expect(first.body.entries.map((e: any) => e.kind)).toEqual(['capture', 'hold']);
    expect(first.body.entries[0]).toMatchObject({ amount: 5, batch_id: null, reason: 'task completed' });
    expect(typeof first.body.entries[0].task_id).toBe('string');
    expect(typeof first.body.next_cursor).toBe('string');
    const second = await t.request('GET', `${CREDITS}?limit=2&cursor=${first.body.next_cursor}`, { as: 'cat' });
    expect(second.body.entries.map((e: any) => [e.kind, e.amount, e.reason])).toEqual([['grant', 7, 'test']]);
    expect(second.body.next_cursor).toBeNull();

    const asAdmin = await t.request('GET', `${CREDITS}/cat`, { token: admin });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.entries).toHaveLength(3);
    expect((await t.request('GET', `${CREDITS}/cat`, { as: 'ann' })).status).toBe(403);
    expect((await t.request('GET', `${CREDITS}/stranger`, { token: admin })).status).toBe(404);
    const notAdmin = await t.request('POST', `${CREDITS}/ann/grant`, { as: 'ann', body: { amount: 5, reason: 'me' } });
    expect(notAdmin.status).toBe(403);
    expect(await balanceOf('ann')).toBe(2);

    const bad = async (body: unknown, field: string) => {
      const res = await t.request('POST', `${CREDITS}/ann/grant`, { token: admin, body });
      expect(res.status).toBe(400);
      expect(res.body.message).toContain(field);
    };
    await bad({ amount: 0, reason: 'x' }, 'amount');
    await bad({ amount: 1.5, reason: 'x' }, 'amount');
    await bad({ amount: '5', reason: 'x' }, 'amount');
    await bad({ amount: 5 }, 'reason');
    await bad({ amount: 5, reason: 'x', extra: 1 }, 'extra');
    await grant('rich', 1_000_000_000);
    await grant('rich', 1_000_000_000);
    const past = await t.request('POST', `${CREDITS}/rich/grant`, {
      token: admin,
      body: { amount: 1_000_000_000, reason: 'x' },
    });
    expect(past.status).toBe(400);
    expect(past.body.errors).toEqual([{ field: 'amount', message: expect.stringContaining('2147483647') }]);
    expect(await balanceOf('rich')).toBe(2_000_000_000);
    const badCursor = await t.request('GET', `${CREDITS}?cursor=nonsense`, { as: 'cat' });
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.message).toContain('cursor');
    expect((await t.request('GET', `${CREDITS}?limit=101`, { as: 'cat' })).status).toBe(400);

    const docs = await t.request('GET', '/docs-json', { token: null });
    expect(Object.keys(docs.body.paths)).toEqual(
      expect.arrayContaining([CREDITS, `${CREDITS}/{user_id}`, `${CREDITS}/{user_id}/grant`]),
    );
    expect(docs.body.paths[`${CREDITS}/{user_id}/grant`].post.responses['201']).toBeDefined();
  });
});

describe('credits, off (the default)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ providers: [new SubtitleEngineProvider()] });
  });
  afterAll(async () => {
    await t.close();
  });

  it('checks nothing and writes no ledger', async () => {
    const res = await t.request('POST', `${BASE}/subtitles/generate`, { as: 'zed', body: { text: 'Free.' } });
    expect(res.status).toBe(202);
    await t.waitForTask(res.body.id as string, (x) => x.status === 'completed');
    const [row] = await t.dataSource.query<{ n: string }[]>(`SELECT count(*) AS n FROM credit_entries`);
    expect(Number(row.n)).toBe(0);
  });
});
