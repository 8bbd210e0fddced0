import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { PlatformProcess } from './support/platform-process';
import { deleteRedisKeys, freePort, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const SUBTITLES = '/api/v1/media/subtitles/generate';
const LEASE_MS = 1000;

/** The state of a user's key, as the table holds it. */
async function keyRow(t: TestApp, user: string, key: string): Promise<{ state: string } | undefined> {
  const [row] = await t.dataSource.query(`SELECT state FROM idempotency_keys WHERE user_id = $1 AND key = $2`, [
    user,
    key,
  ]);
  return row;
}

/** Repeats `request` until it answers something else than 409 (bounded); answers that answer. */
async function untilNot409(
  request: () => Promise<{ status: number; body: any; headers: Headers }>,
  timeoutMs: number,
): Promise<{ status: number; body: any; headers: Headers }> {
  return waitUntil('an answer other than 409', request, { timeoutMs, intervalMs: 100, until: (r) => r.status !== 409 });
}

describe('Idempotency-Key leases', () => {
  const redisPrefix = `idlease${process.pid}`;
  let database: { name: string; url: string };
  let t: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    // No worker: a task stays queued, so a request with Prefer: wait holds its key for the whole wait.
    t = await TestApp.start({
      database,
      redisPrefix,
      env: { APP_ROLE: 'api', IDEMPOTENCY_LEASE_MS: String(LEASE_MS) },
    });
  });
  afterAll(async () => {
    await t.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  const countTasks = async (user: string) =>
    Number((await t.dataSource.query(`SELECT count(*) AS n FROM tasks WHERE user_id = $1`, [user]))[0].n);

  it('frees the key of a request whose process died between the claim and the answer, once its lease lapses', async () => {
    const port = await freePort();
    const child = PlatformProcess.spawn({
      APP_ROLE: 'api',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      IDEMPOTENCY_LEASE_MS: String(LEASE_MS),
    });
    try {
      await child.waitForHttp(`http://127.0.0.1:${port}/health/live`);
      const body = { text: 'Interrupted.' };
      const headers = {
        authorization: `Bearer ${t.token('crash')}`,
        'content-type': 'application/json',
        'idempotency-key': 'order-77',
        prefer: 'wait=60',
      };
      const pending = fetch(`http://127.0.0.1:${port}${SUBTITLES}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
      }).catch(() => undefined);
      // The task exists and the request waits for it, holding the key: the process dies there.
      await waitUntil('the task of the request', async () => (await countTasks('crash')) > 0, {
        timeoutMs: 20_000,
        intervalMs: 50,
      });
      expect(await countTasks('crash')).toBe(1);
      expect(await keyRow(t, 'crash', 'order-77')).toEqual({ state: 'in_flight' });
      await child.kill();
      await pending;

      // While the dead request's lease runs, the key is still taken; after it, a retry is served.
      const retry = await untilNot409(
        () => t.request('POST', SUBTITLES, { as: 'crash', headers: { 'idempotency-key': 'order-77' }, body }),
        LEASE_MS + 10_000,
      );
      expect(retry.status).toBe(202);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(await keyRow(t, 'crash', 'order-77')).toEqual({ state: 'done' });
      const again = await t.request('POST', SUBTITLES, {
        as: 'crash',
        headers: { 'idempotency-key': 'order-77' },
        body,
      });
      expect([again.status, again.body.id, again.headers.get('idempotent-replayed')]).toEqual([
        202,
        retry.body.id,
        'true',
      ]);
    } finally {
      await child.kill();
    }
  }, 120_000);

  it('answers the created task when its answer cannot be recorded, and the key is free again after the lease', async () => {
    // Postgres refuses to record answers for this user's keys: the write after the task was created fails.
    await t.dataSource.query(`
      CREATE FUNCTION refuse_done() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'recording refused'; END $$`);
    await t.dataSource.query(`
      CREATE TRIGGER refuse_done BEFORE UPDATE ON idempotency_keys FOR EACH ROW
      WHEN (NEW.state = 'done' AND NEW.user_id = 'unrecorded') EXECUTE FUNCTION refuse_done()`);
    try {
      const opts = { as: 'unrecorded', headers: { 'idempotency-key': 'order-88' }, body: { text: 'Created.' } };
      const first = await t.request('POST', SUBTITLES, opts);
      expect(first.status).toBe(202);
      expect(first.body).toMatchObject({ status: 'queued', type: 'subtitle_generation' });
      expect((await t.request('GET', `/api/v1/media/tasks/${first.body.id}`, { as: 'unrecorded' })).status).toBe(200);
      expect(await keyRow(t, 'unrecorded', 'order-88')).toEqual({ state: 'in_flight' });

      await t.dataSource.query(`DROP TRIGGER refuse_done ON idempotency_keys`);
      const retry = await untilNot409(() => t.request('POST', SUBTITLES, opts), LEASE_MS + 10_000);
      expect(retry.status).toBe(202);
      expect(await keyRow(t, 'unrecorded', 'order-88')).toEqual({ state: 'done' });
    } finally {
      await t.dataSource.query(`DROP TRIGGER IF EXISTS refuse_done ON idempotency_keys`);
      await t.dataSource.query(`DROP FUNCTION IF EXISTS refuse_done()`);
    }
  });

  it('keeps the key of a live request taken past the lease: a long wait renews it', async () => {
    const opts = {
      as: 'waiter',
      headers: { 'idempotency-key': 'order-99', prefer: `wait=${(4 * LEASE_MS) / 1000}` },
      body: { text: 'Still waiting.' },
    };
    const first = t.request('POST', SUBTITLES, opts);
    const lease = () =>
      t.dataSource
        .query<{ expires: Date }[]>(
          `SELECT lease_expires_at AS expires FROM idempotency_keys WHERE user_id = 'waiter' AND key = 'order-99'`,
        )
        .then((rows) => rows[0]?.expires);
    const firstExpiry = await waitUntil('the key to be claimed', lease, { timeoutMs: 5000 });
    // Past the claim's first lease, the request still holds its key: it has renewed the lease since.
    await waitUntil(
      'the first lease to lapse, renewed',
      async () =>
        (
          await t.dataSource.query<{ ok: boolean }[]>(
            // The Date read back has lost the microseconds: one millisecond more is past the stored value.
            `SELECT now() > first.at AND lease_expires_at > first.at AS ok
               FROM idempotency_keys, (SELECT $1::timestamptz + interval '1 millisecond' AS at) first
              WHERE user_id = 'waiter' AND key = 'order-99'`,
            [firstExpiry],
          )
        )[0]?.ok,
      { timeoutMs: 3 * LEASE_MS },
    );
    const during = await t.request('POST', SUBTITLES, opts);
    expect(during.status).toBe(409);
    expect(during.body.message).toMatch(/still in progress/);
    const answer = await first;
    expect(answer.status).toBe(202);
    const replay = await t.request('POST', SUBTITLES, opts);
    expect([replay.status, replay.body.id, replay.headers.get('idempotent-replayed')]).toEqual([
      202,
      answer.body.id,
      'true',
    ]);
    expect(await countTasks('waiter')).toBe(1);
  });
});
