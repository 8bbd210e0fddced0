import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { ApiKeysService } from '../src/api-keys/api-keys.service';
import { RedisService } from '../src/queue/redis.service';
import { TcpProxy } from './support/tcp-proxy';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';
const SUBTITLES = `${BASE}/subtitles/generate`;

describe('rate limits across API processes', () => {
  const redisPrefix = `limits${process.pid}`;
  let database: { name: string; url: string };
  let one: TestApp;
  let two: TestApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two API processes of one deployment: the limit is counted in Redis, so it holds across both.
    const env = { APP_ROLE: 'api', RATE_LIMIT_PER_MINUTE: '6' };
    one = await TestApp.start({ database, redisPrefix, env });
    two = await TestApp.start({ database, redisPrefix, env });
  });
  afterAll(async () => {
    await one.close();
    await two.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('counts a user across processes, answers 429 with Retry-After past the limit, and leaves others alone', async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await (i % 2 ? two : one).request('GET', `${BASE}/tasks`, { as: 'rl' }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.headers.get('ratelimit-remaining'))).toEqual(['5', '4', '3', '2', '1', '0']);
    expect(answers[0].headers.get('ratelimit-limit')).toBe('6');
    expect(Number(answers[0].headers.get('ratelimit-reset'))).toBeGreaterThan(0);

    const refused = await two.request('POST', SUBTITLES, { as: 'rl', body: { text: 'One too many.' } });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'rate_limited' });
    expect(refused.body.message).toMatch(/6 requests per minute/);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Nothing was created by the refused request.
    expect((await one.dataSource.query(`SELECT count(*)::int AS n FROM tasks WHERE user_id = 'rl'`))[0].n).toBe(0);

    const other = await one.request('POST', SUBTITLES, { as: 'rl-neighbour', body: { text: 'Not slowed.' } });
    expect(other.status).toBe(202);
    expect(other.headers.get('ratelimit-remaining')).toBe('5');
  });

  it('does not count public routes', async () => {
    for (let i = 0; i < 8; i++) expect((await one.request('GET', '/health/live', { token: null })).status).toBe(200);
  });
});

describe('the active-task quota', () => {
  let t: TestApp;

  beforeAll(async () => {
    // No workers: submitted tasks stay queued, so they count against the quota.
    t = await TestApp.start({ env: { APP_ROLE: 'api', QUOTA_MAX_ACTIVE_TASKS: '2' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a submit past the cap with 429 naming it, until a task finishes', async () => {
    const first = await t.request('POST', SUBTITLES, { as: 'q', body: { text: 'One.' } });
    expect((await t.request('POST', SUBTITLES, { as: 'q', body: { text: 'Two.' } })).status).toBe(202);
    const third = await t.request('POST', SUBTITLES, { as: 'q', body: { text: 'Three.' } });
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'quota_exceeded' });
    expect(third.body.message).toMatch(/2 unfinished tasks and the limit is 2/);
    // Another user has a quota of their own.
    expect((await t.request('POST', SUBTITLES, { as: 'q2', body: { text: 'Mine.' } })).status).toBe(202);
    // Cancelling one frees a place.
    expect((await t.request('POST', `${BASE}/tasks/${first.body.id}/cancel`, { as: 'q' })).status).toBe(200);
    expect((await t.request('POST', SUBTITLES, { as: 'q', body: { text: 'Three again.' } })).status).toBe(202);
  });

  it('holds under concurrent submits of one user: exactly the cap gets through', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => t.request('POST', SUBTITLES, { as: 'burst', body: { text: `T${i}.` } })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    const [row] = await t.dataSource.query(`SELECT count(*)::int AS n FROM tasks WHERE user_id = 'burst'`);
    expect(row.n).toBe(2);
  });

  it('counts a batch whole against the quota: one that would pass it is refused, nothing is written', async () => {
    const one = { task_type: 'subtitle_generation', input_data: { text: 'B.' } };
    const res = await t.request('POST', `${BASE}/batch`, { as: 'batcher', body: [one, one, one] });
    expect(res.status).toBe(429);
    const [row] = await t.dataSource.query(`SELECT count(*)::int AS n FROM tasks WHERE user_id = 'batcher'`);
    expect(row.n).toBe(0);
    expect((await t.request('POST', `${BASE}/batch`, { as: 'batcher', body: [one, one] })).status).toBe(202);
  });
});

describe('rate limits while Redis is away', () => {
  let t: TestApp;
  let redisProxy: TcpProxy;

  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    redisProxy = await new TcpProxy(redis.hostname, Number(redis.port || 6379)).start();
    t = await TestApp.start({
      env: { APP_ROLE: 'api', RATE_LIMIT_PER_MINUTE: '5', REDIS_URL: `redis://127.0.0.1:${redisProxy.port}` },
    });
  });
  afterAll(async () => {
    await redisProxy.start().catch(() => undefined);
    await t.close();
    await redisProxy.stop();
  });

  const list = () => t.request('GET', `${BASE}/tasks`, { as: 'away' });
  const remaining = (res: { headers: Headers }) => Number(res.headers.get('ratelimit-remaining'));

  if (TEST_QUEUE_BACKEND === 'redis') {
    it('counts each process alone in memory meanwhile (never a 500, never unlimited), then in Redis again', async () => {
      // The client reaches Redis through the proxy: until it is ready, the in-memory count would answer.
      const redis = t.app.get(RedisService);
      await waitUntil('the Redis client to be ready', () => redis.isReady, { timeoutMs: 5000 });
      expect(remaining(await list())).toBe(4);
      expect(remaining(await list())).toBe(3);

      await redisProxy.stop();
      // Once the client has noticed, the process's own count takes over, from a fresh window.
      const res = await waitUntil('the in-memory count to take over', list, {
        timeoutMs: 5000,
        intervalMs: 50,
        until: (r) => remaining(r) === 4,
      });
      expect(res.status).toBe(200);
      expect(remaining(res)).toBe(4);
      for (const left of [3, 2, 1, 0]) expect(remaining(await list())).toBe(left);
      const limited = await list();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);

      await redisProxy.start();
      // Back in Redis: its window still holds the two requests counted before the outage.
      const back = await waitUntil('requests to be let through again', list, {
        intervalMs: 100,
        until: (r) => r.status === 200,
      });
      expect(back.status).toBe(200);
      expect(remaining(back)).toBe(2);
    });
  } else {
    it('with the queues on Postgres, counts in Postgres whatever Redis does: one window across the outage', async () => {
      expect(remaining(await list())).toBe(4);
      expect(remaining(await list())).toBe(3);
      await redisProxy.stop();
      for (const left of [2, 1, 0]) expect(remaining(await list())).toBe(left);
      const limited = await list();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      await redisProxy.start();
      expect((await list()).status).toBe(429);
    });
  }
});

describe('requests refused for want of credentials, per client address', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { APP_ROLE: 'api', RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '5' } });
  });
  afterAll(async () => {
    await t.close();
  });

  /** A request from `address` (through a proxy on loopback, which is trusted by default) with an unknown API key. */
  const withKey = (address: string, key: string) =>
    t.request('GET', `${BASE}/tasks`, { token: null, headers: { 'x-api-key': key, 'x-forwarded-for': address } });

  it('answers 429 with Retry-After past the limit, before any key is looked up; other addresses are not held back', async () => {
    const lookups = jest.spyOn(t.app.get(ApiKeysService), 'authenticate');
    try {
      for (let i = 0; i < 5; i++) expect((await withKey('203.0.113.7', `mk_unknown_${i}`)).status).toBe(401);
      expect(lookups).toHaveBeenCalledTimes(5);

      const refused = await withKey('203.0.113.7', 'mk_unknown_6');
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'rate_limited' });
      expect(refused.body.message).toMatch(/5 refused requests a minute/);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // No credentials at all: refused the same way. A bearer token is still checked (it costs no lookup).
      const bare = await t.request('GET', `${BASE}/tasks`, {
        token: null,
        headers: { 'x-forwarded-for': '203.0.113.7' },
      });
      expect(bare.status).toBe(429);
      expect(lookups).toHaveBeenCalledTimes(5);
      const withToken = await t.request('GET', `${BASE}/tasks`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      expect(withToken.status).toBe(200);
      // Health checks are never refused.
      const health = await t.request('GET', '/health/ready', {
        token: null,
        headers: { 'x-forwarded-for': '203.0.113.7' },
      });
      expect(health.status).toBe(200);

      expect((await withKey('203.0.113.8', 'mk_unknown_7')).status).toBe(401);
    } finally {
      lookups.mockRestore();
    }
  });

  it('does not count 403s: a signed-in client refused a resource is not an unauthenticated one', async () => {
    for (let i = 0; i < 6; i++) {
      const forbidden = await t.request('GET', '/api/v1/queue/stats', {
        headers: { 'x-forwarded-for': '203.0.113.9' },
      });
      expect(forbidden.status).toBe(403);
    }
    expect((await withKey('203.0.113.9', 'mk_unknown_8')).status).toBe(401);
  });
});

describe('client addresses with TRUST_PROXY=false', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      env: { APP_ROLE: 'api', RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '2', TRUST_PROXY: 'false' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('ignores X-Forwarded-For: a client cannot escape the limit by making up addresses', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await t.request('GET', `${BASE}/tasks`, {
        token: null,
        headers: { 'x-api-key': `mk_made_up_${i}`, 'x-forwarded-for': `198.51.100.${i}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 429, 429]);
  });
});
