import Redis from 'ioredis';
import { request as httpRequest, ClientRequest, IncomingMessage } from 'node:http';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';
const SUBTITLES = `${BASE}/subtitles/generate`;

/** An open GET …/events: its status, and the request to drop it with. */
interface Stream {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
  close(): void;
}

function openStream(app: TestApp, taskId: string, as: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest(`${app.baseUrl}${BASE}/tasks/${taskId}/events`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${app.token(as)}` },
    });
    req.on('response', (res) => {
      const stream: Stream = {
        status: res.statusCode ?? 0,
        body: '',
        headers: res.headers,
        close: () => req.destroy(),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (stream.body += chunk));
      // An event stream answers its first line at once; an error answer is complete when it ends.
      if (stream.status === 200) res.once('data', () => resolve(stream));
      else res.on('end', () => resolve(stream));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Repeats `open` until it answers 200 (bounded): a closed stream's place is given back once its socket is gone. */
async function openWhenFree(open: () => Promise<Stream>, timeoutMs = 5000): Promise<Stream> {
  return waitUntil('a place to be free', open, { timeoutMs, intervalMs: 50, until: (s) => s.status === 200 });
}

describe('held connections (event streams and waits) per user, across API processes', () => {
  const redisPrefix = `held${process.pid}`;
  let database: { name: string; url: string };
  let one: TestApp;
  let two: TestApp;
  const streams: Stream[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    // No worker: tasks stay queued, so their streams and waits stay open.
    const env = { APP_ROLE: 'api', HELD_CONNECTIONS_PER_USER: '2', SOURCES_SYNC_WAIT_SECONDS: '30' };
    one = await TestApp.start({ database, redisPrefix, env });
    two = await TestApp.start({ database, redisPrefix, env });
  });
  afterEach(() => {
    for (const s of streams.splice(0)) s.close();
  });
  afterAll(async () => {
    await one.close();
    await two.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  async function submit(as: string): Promise<string> {
    const res = await one.request('POST', SUBTITLES, { as, body: { text: 'Held.' } });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  async function open(app: TestApp, taskId: string, as: string): Promise<Stream> {
    const stream = await openStream(app, taskId, as);
    streams.push(stream);
    return stream;
  }

  it('refuses a stream past HELD_CONNECTIONS_PER_USER with 429 and Retry-After, counting every process', async () => {
    const id = await submit('holder');
    expect((await open(one, id, 'holder')).status).toBe(200);
    expect((await open(two, id, 'holder')).status).toBe(200);

    const refused = await open(one, id, 'holder');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const body = JSON.parse(refused.body);
    expect(body).toMatchObject({ code: 'rate_limited', limit: 2 });
    expect(body.message).toMatch(/you have 2 connections held open .*the limit is 2 \(HELD_CONNECTIONS_PER_USER\)/);
    expect((await open(two, id, 'holder')).status).toBe(429);

    // Another user is not held back.
    const theirs = await submit('neighbour');
    expect((await open(two, theirs, 'neighbour')).status).toBe(200);

    // A closed stream gives its place back.
    streams[0].close();
    const reopened = await openWhenFree(() => open(two, id, 'holder'));
    expect(reopened.status).toBe(200);
  });

  it('answers Prefer: wait at once with 202 when the user holds too many connections: the task is created', async () => {
    const id = await submit('waiter');
    expect((await open(one, id, 'waiter')).status).toBe(200);
    expect((await open(two, id, 'waiter')).status).toBe(200);

    const started = Date.now();
    const res = await one.request('POST', SUBTITLES, {
      as: 'waiter',
      headers: { prefer: 'wait=30' },
      body: { text: 'x' },
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(202);
    expect(res.headers.get('preference-applied')).toBeNull();
    expect(res.body).toMatchObject({ id: expect.any(String), status: 'queued' });

    // So does the synchronous route of the sources, with the sources' accepted answer.
    const sync = Date.now();
    const job = await two.request('POST', '/video/img2vid', {
      as: 'waiter',
      body: { images: [{ id: 1, image_url: 'http://127.0.0.1:9/frame.png', duracao: 1 }] },
    });
    expect(Date.now() - sync).toBeLessThan(5000);
    expect(job.status).toBe(202);
    expect(job.body).toMatchObject({ jobId: expect.any(String), status: 'IN_QUEUE' });
  });

  it('counts a wait as a held connection: a wait under way takes a place', async () => {
    const waiting = one.request('POST', SUBTITLES, {
      as: 'patient',
      headers: { prefer: 'wait=5' },
      body: { text: 'a' },
    });
    // The wait has its place once its task exists (the place is taken first).
    const tasks = async () =>
      Number((await one.dataSource.query(`SELECT count(*) AS n FROM tasks WHERE user_id = 'patient'`))[0].n);
    await waitUntil('the waiting request to create its task', async () => (await tasks()) > 0, { timeoutMs: 5000 });
    const id = await submit('patient');
    expect((await open(two, id, 'patient')).status).toBe(200);
    expect((await open(one, id, 'patient')).status).toBe(429);
    expect((await waiting).status).toBe(202);
  });

  it("does not count a crashed process's places once their leases have lapsed", async () => {
    // What a process that died holding two streams leaves in Redis a minute later: two lapsed leases.
    const redis = new Redis(REDIS_URL);
    try {
      const key = `${redisPrefix}:held:ghost`;
      await redis.zadd(key, Date.now() - 1000, 'dead-1', Date.now() - 5000, 'dead-2');
      await redis.pexpire(key, 60_000);
      const id = await submit('ghost');
      expect((await open(one, id, 'ghost')).status).toBe(200);
      expect((await open(two, id, 'ghost')).status).toBe(200);
      expect((await open(one, id, 'ghost')).status).toBe(429);
      expect(await redis.zrange(key, 0, -1)).toHaveLength(2);
    } finally {
      redis.disconnect();
    }
  });
});

describe('held connections per process', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { APP_ROLE: 'api', HELD_CONNECTIONS_PER_PROCESS: '1' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses any user past HELD_CONNECTIONS_PER_PROCESS with 429', async () => {
    const mine = (await t.request('POST', SUBTITLES, { as: 'first', body: { text: 'a' } })).body.id as string;
    const theirs = (await t.request('POST', SUBTITLES, { as: 'second', body: { text: 'b' } })).body.id as string;
    const held = await openStream(t, mine, 'first');
    try {
      expect(held.status).toBe(200);
      const refused = await openStream(t, theirs, 'second');
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBeDefined();
      expect(JSON.parse(refused.body).message).toMatch(/HELD_CONNECTIONS_PER_PROCESS/);
      // A finished task's stream answers its last event and closes: it holds nothing, so it is never refused.
      const done = await t.request('POST', `${BASE}/tasks/${theirs}/cancel`, { as: 'second' });
      expect(done.status).toBe(200);
      const final = await openStream(t, theirs, 'second');
      expect(final.status).toBe(200);
    } finally {
      held.close();
    }
  });
});
