import { createHash } from 'node:crypto';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const KEYS = '/api/v1/api-keys';
const GENERATE = '/api/v1/media/subtitles/generate';

describe('API keys', () => {
  let t: TestApp;
  let admin: string;

  beforeAll(async () => {
    // The default cache TTL (5 s): revocation must still be immediate on the process that revoked.
    t = await TestApp.start();
    admin = t.token('root', { admin: true });
  });
  afterAll(async () => {
    await t.close();
  });

  const create = (body: unknown) => t.request('POST', KEYS, { token: admin, body });
  const withKey = (method: string, path: string, key: string, body?: unknown) =>
    t.request(method, path, { token: null, headers: { 'x-api-key': key }, body });

  it('creates a key (201), shows it once, stores only its hash, and lists it without key or hash', async () => {
    const res = await create({ owner: 'carol', name: 'video pipeline' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      owner: 'carol',
      name: 'video pipeline',
      key: expect.stringMatching(/^mt_[A-Za-z0-9_-]{43}$/),
      prefix: res.body.key.slice(0, 11),
      scopes: ['tasks'],
      created_at: expect.any(String),
    });
    const key: string = res.body.key;

    const rows = await t.dataSource.query<Record<string, unknown>[]>(`SELECT * FROM api_keys WHERE id = $1`, [
      res.body.id,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0].key_hash).toBe(createHash('sha256').update(key).digest('hex'));
    expect(Object.values(rows[0]).map(String)).not.toContain(key);

    const list = await t.request('GET', KEYS, { token: admin });
    expect(list.status).toBe(200);
    const listed = list.body.find((k: { id: string }) => k.id === res.body.id);
    expect(listed).toEqual({
      id: res.body.id,
      owner: 'carol',
      name: 'video pipeline',
      prefix: key.slice(0, 11),
      scopes: ['tasks'],
      created_at: res.body.created_at,
      last_used_at: null,
      revoked_at: null,
    });
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(key);
    expect(text).not.toContain(String(rows[0].key_hash));

    // A second key is a different secret.
    const other = await create({ owner: 'carol', name: 'second' });
    expect(other.body.key).not.toBe(key);
  });

  it("authenticates as its owner: the task it creates is the owner's, not another user's", async () => {
    const { body: created } = await create({ owner: 'dave', name: 'ci' });
    const res = await withKey('POST', GENERATE, created.key, { text: 'Hi.' });
    expect(res.status).toBe(202);
    const taskId: string = res.body.id;

    expect((await t.request('GET', `/api/v1/media/tasks/${taskId}`, { as: 'dave' })).status).toBe(200);
    expect((await t.request('GET', `/api/v1/media/tasks/${taskId}`, { as: 'erin' })).status).toBe(404);
    expect((await withKey('GET', `/api/v1/media/tasks/${taskId}`, created.key)).status).toBe(200);
    const [row] = await t.dataSource.query<{ user_id: string }[]>(`SELECT user_id FROM tasks WHERE id = $1`, [taskId]);
    expect(row.user_id).toBe('dave');

    // The use is recorded (once a minute at most, fire and forget: poll briefly).
    const lastUsed = await waitUntil(
      'the key use to be recorded',
      async () => {
        const list = await t.request('GET', KEYS, { token: admin });
        return list.body.find((k: { id: string }) => k.id === created.id).last_used_at as string | null;
      },
      { timeoutMs: 2000 },
    );
    expect(lastUsed).toEqual(expect.any(String));

    // A key never makes its holder an admin, whoever the owner is.
    const { body: rootKey } = await create({ owner: 'root', name: 'not admin' });
    const asKey = await withKey('GET', KEYS, rootKey.key);
    expect(asKey.status).toBe(403);
  });

  it('refuses a wrong, malformed or empty key with 401 "invalid API key"', async () => {
    const { body: created } = await create({ owner: 'dave', name: 'near miss' });
    for (const key of [
      `${created.key.slice(0, -1)}${created.key.endsWith('A') ? 'B' : 'A'}`,
      'mt_nope',
      'x'.repeat(500),
    ]) {
      const res = await withKey('POST', GENERATE, key, { text: 'Hi.' });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'unauthorized', message: 'invalid API key' });
    }
    const empty = await withKey('GET', '/api/v1/media/tasks', '');
    expect(empty.status).toBe(401);
    expect(empty.body.message).toBe('invalid API key');
  });

  it('a bearer token, when sent, is what counts: a bad one is not rescued by a good key', async () => {
    const { body: created } = await create({ owner: 'dave', name: 'both' });
    const res = await t.request('GET', '/api/v1/media/tasks', {
      token: 'not-a-jwt',
      headers: { 'x-api-key': created.key },
    });
    expect(res.status).toBe(401);
    expect(res.body.message).toBe('invalid token');
  });

  it('a revoked key stops working at once on the process that revoked it; DELETE is 204, unknown ids 404', async () => {
    const { body: created } = await create({ owner: 'frank', name: 'to revoke' });
    // Used first, so this process has it cached.
    expect((await withKey('GET', '/api/v1/media/tasks', created.key)).status).toBe(200);

    const del = await t.request('DELETE', `${KEYS}/${created.id}`, { token: admin });
    expect(del.status).toBe(204);
    const after = await withKey('GET', '/api/v1/media/tasks', created.key);
    expect(after.status).toBe(401);
    expect(after.body.message).toBe('invalid API key');

    const list = await t.request('GET', KEYS, { token: admin });
    expect(list.body.find((k: { id: string }) => k.id === created.id).revoked_at).toEqual(expect.any(String));
    // Revoking again is harmless; an unknown id is 404.
    expect((await t.request('DELETE', `${KEYS}/${created.id}`, { token: admin })).status).toBe(204);
    expect((await t.request('DELETE', `${KEYS}/00000000-0000-4000-8000-000000000000`, { token: admin })).status).toBe(
      404,
    );
    expect((await t.request('DELETE', `${KEYS}/not-a-uuid`, { token: admin })).status).toBe(404);
  });

  it('another process of the deployment stops accepting a revoked key within its cache TTL', async () => {
    const other = await TestApp.start({
      database: t.database,
      redisPrefix: t.redisPrefix,
      env: { APP_ROLE: 'api', API_KEY_CACHE_TTL_MS: '300' },
    });
    try {
      const { body: created } = await create({ owner: 'gina', name: 'shared' });
      expect((await withOther('GET', '/api/v1/media/tasks')).status).toBe(200);
      expect((await t.request('DELETE', `${KEYS}/${created.id}`, { token: admin })).status).toBe(204);
      // The other process's cached lookup lapses after its TTL (300 ms): from then on the key is refused there.
      const res = await waitUntil('the revoked key to be refused', () => withOther('GET', '/api/v1/media/tasks'), {
        timeoutMs: 3000,
        until: (r) => r.status !== 200,
      });
      expect(res.status).toBe(401);
      expect(res.body.message).toBe('invalid API key');

      function withOther(method: string, path: string) {
        return other.request(method, path, { token: null, headers: { 'x-api-key': created.key } });
      }
    } finally {
      await other.close();
    }
  });

  it('is for admins only: 403 on create, list and revoke for other users', async () => {
    const { body: created } = await create({ owner: 'hank', name: 'kept' });
    const user = t.token('hank');
    expect((await t.request('POST', KEYS, { token: user, body: { owner: 'hank', name: 'mine' } })).status).toBe(403);
    expect((await t.request('GET', KEYS, { token: user })).status).toBe(403);
    const del = await t.request('DELETE', `${KEYS}/${created.id}`, { token: user });
    expect(del.status).toBe(403);
    expect(del.body.code).toBe('forbidden');
    expect((await withKey('GET', '/api/v1/media/tasks', created.key)).status).toBe(200);
    expect((await t.request('GET', KEYS, { token: null })).status).toBe(401);
  });

  it('answers 400 naming the bad field', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'no owner' }, 'owner'],
      [{ owner: '', name: 'empty owner' }, 'owner'],
      [{ owner: 'x'.repeat(201), name: 'long owner' }, 'owner'],
      [{ owner: 'ivy' }, 'name'],
      [{ owner: 'ivy', name: 'x'.repeat(101) }, 'name'],
      [{ owner: 'ivy', name: 42 }, 'name'],
      [{ owner: 'ivy', name: 'ok', key: 'mt_chosen' }, 'key'],
      [{ owner: 'ivy', name: 'ok', scopes: [] }, 'scopes'],
      [{ owner: 'ivy', name: 'ok', scopes: 'tasks' }, 'scopes'],
    ];
    for (const [body, field] of cases) {
      const res = await create(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect([...new Set(res.body.errors.map((e: { field: string }) => e.field))]).toEqual([field]);
      expect(res.body.message).toContain(field);
    }
    const [{ count }] = await t.dataSource.query<{ count: string }[]>(
      `SELECT count(*) FROM api_keys WHERE owner = 'ivy'`,
    );
    expect(Number(count)).toBe(0);
  });

  it('names an unknown scope in its 400', async () => {
    const res = await create({ owner: 'ivy', name: 'ok', scopes: ['tasks', 'queue:admin', 'queue:read'] });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'scopes', message: expect.stringContaining('"queue:admin"') }]);
    expect(res.body.message).toContain('queue:admin');
  });

  it('opens the queue endpoints to keys with the queue scopes, and nothing else an admin has', async () => {
    const keyOf = async (scopes: string[]) => {
      const res = await create({ owner: 'ops', name: scopes.join('+'), scopes });
      expect(res.status).toBe(201);
      expect(res.body.scopes).toEqual(scopes);
      return res.body.key as string;
    };
    const reader = await keyOf(['queue:read']);
    const writer = await keyOf(['queue:write']);
    const tasks = await keyOf(['tasks']);
    const both = await keyOf(['tasks', 'queue:read']);
    const listed = (await t.request('GET', KEYS, { token: admin })).body.filter(
      (k: { owner: string }) => k.owner === 'ops',
    );
    expect(listed.map((k: { scopes: string[] }) => k.scopes)).toEqual(
      expect.arrayContaining([['queue:read'], ['queue:write'], ['tasks'], ['tasks', 'queue:read']]),
    );

    // queue:read: the stats, on both paths.
    for (const key of [reader, writer, both]) {
      for (const path of ['/queue/stats', '/api/v1/queue/stats']) {
        const res = await withKey('GET', path, key);
        expect(res.status).toBe(200);
        expect(res.body.totals).toEqual(expect.objectContaining({ waiting: expect.any(Number) }));
      }
    }
    const denied = await withKey('GET', '/queue/stats', tasks);
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: 'forbidden', message: expect.stringContaining('queue:read') });

    // queue:write: clean, pause, resume; queue:read alone may not.
    const clean = await withKey('POST', '/api/v1/queue/clean', writer, { grace_ms: 0 });
    expect(clean.status).toBe(200);
    expect(clean.body).toMatchObject({ grace_ms: 0, total_removed: expect.any(Number) });
    expect((await withKey('POST', '/api/v1/queue/maintenance/pause', writer)).body.paused).toBe(true);
    expect((await withKey('POST', '/api/v1/queue/maintenance/resume', writer)).body.paused).toBe(false);
    for (const path of ['/api/v1/queue/clean', '/api/v1/queue/maintenance/pause', '/api/v1/queue/maintenance/resume']) {
      const res = await withKey('POST', path, reader, {});
      expect({ path, status: res.status }).toEqual({ path, status: 403 });
      expect(res.body.message).toContain('queue:write');
    }

    // A key with queue scopes only acts on no task: 403 naming `tasks`.
    const submit = await withKey('POST', GENERATE, reader, { text: 'Hi.' });
    expect(submit.status).toBe(403);
    expect(submit.body.message).toContain('tasks');
    expect((await withKey('GET', '/api/v1/media/tasks', writer)).status).toBe(403);
    expect((await withKey('POST', GENERATE, both, { text: 'Hi.' })).status).toBe(202);

    // Nothing else an admin has: keys, cache purge, other users' tasks.
    for (const key of [reader, writer, both]) {
      expect((await withKey('GET', KEYS, key)).status).toBe(403);
      expect((await withKey('POST', KEYS, key, { owner: 'ops', name: 'more' })).status).toBe(403);
      expect((await withKey('DELETE', '/api/v1/media/cache', key)).status).toBe(403);
    }
    expect((await withKey('GET', '/api/v1/media/tasks?scope=all', both)).status).toBe(403);
  });
});
