import { createServer, Server, Socket } from 'node:net';
import { Client } from 'pg';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { PlatformProcess } from './support/platform-process';
import { TcpProxy } from './support/tcp-proxy';
import { TaskEventStreamService } from '../src/events/task-event-stream.service';
import { TaskWaiter } from '../src/tasks/task-waiter';
import { deleteRedisKeys, freePort, sleep, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const SHUTDOWN_TIMEOUT_MS = 2000;
/** A busy machine may run the exit a little late; a process that ignores SIGTERM is still running long after. */
const LATE_MS = 2500;
const GIVE_UP_MS = 20_000;

/** A port that accepts connections and never answers a byte: a dependency lost in a network partition. */
async function blackHole(): Promise<{ port: number; connected: Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let connected!: () => void;
  const firstConnection = new Promise<void>((resolve) => (connected = resolve));
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    connected();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connected: firstConnection,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}

/**
 * SIGTERM ends the process within SHUTDOWN_TIMEOUT_MS whatever state Postgres and Redis are in: an orchestrator's
 * rolling deploy or scale-down must not wait out its grace period on a process that hangs on a dependency.
 */
describe('shutdown within SHUTDOWN_TIMEOUT_MS, whatever the dependencies do', () => {
  const redisPrefix = `shutdown${process.pid}`;
  let database: { name: string; url: string };
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  function spawn(env: Record<string, string>): PlatformProcess {
    const child = PlatformProcess.spawn({
      APP_ROLE: 'all',
      HOST: '127.0.0.1',
      REDIS_PREFIX: redisPrefix,
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      RECONCILE_INTERVAL_MS: '1000',
      ...env,
    });
    cleanups.push(() => child.kill());
    return child;
  }

  if (TEST_QUEUE_BACKEND === 'redis') {
    it('Redis unreachable from the start: the boot ends by itself within seconds, naming REDIS_URL, instead of hanging', async () => {
      const nowhere = await freePort();
      const started = Date.now();
      const child = spawn({
        PORT: String(await freePort()),
        DATABASE_URL: database.url,
        REDIS_URL: `redis://127.0.0.1:${nowhere}`,
      });
      const exit = await Promise.race([child.exited, sleep(GIVE_UP_MS).then(() => undefined)]);
      expect(exit).toEqual({ code: 1, signal: null });
      expect(Date.now() - started).toBeLessThan(GIVE_UP_MS);
      expect(child.output).toContain('REDIS_URL');
      expect(child.output).not.toMatch(/\n\s+at /); // one paragraph, no stack trace
    }, 120_000);
  } else {
    it('Redis unreachable from the start, with the queues on Postgres: the platform boots, is healthy without it and stops in time', async () => {
      const port = await freePort();
      const child = spawn({
        PORT: String(port),
        DATABASE_URL: database.url,
        REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      });
      await child.waitForHttp(`http://127.0.0.1:${port}/health/ready`, GIVE_UP_MS);
      const ready = await fetch(`http://127.0.0.1:${port}/health`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: Record<string, unknown> }).checks).not.toHaveProperty('redis');
      const tookMs = await child.stopWith('SIGTERM', GIVE_UP_MS);
      expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + LATE_MS);
      expect(child.output).not.toContain('REDIS_URL');
    }, 120_000);
  }

  it('Postgres silent from the start: SIGTERM during the boot ends it in time', async () => {
    const silent = await blackHole();
    cleanups.push(() => silent.close());
    const child = spawn({
      PORT: String(await freePort()),
      DATABASE_URL: withPort(database.url, silent.port),
      REDIS_URL,
    });
    await silent.connected; // the boot is waiting for Postgres
    const tookMs = await child.stopWith('SIGTERM', GIVE_UP_MS);
    expect(tookMs).toBeDefined();
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + LATE_MS);
  }, 120_000);

  it('Postgres and Redis both gone silent while it runs: SIGTERM ends it in time', async () => {
    const redis = new URL(REDIS_URL);
    const redisProxy = await new TcpProxy(redis.hostname, Number(redis.port || 6379)).start();
    const pg = new URL(database.url);
    const pgProxy = await new TcpProxy(pg.hostname, Number(pg.port || 5432)).start();
    cleanups.push(
      () => redisProxy.stop(),
      () => pgProxy.stop(),
    );
    const port = await freePort();
    const child = spawn({
      PORT: String(port),
      DATABASE_URL: withPort(database.url, pgProxy.port),
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    });
    await child.waitForHttp(`http://127.0.0.1:${port}/health/ready`);
    redisProxy.hang();
    pgProxy.hang();
    const tookMs = await child.stopWith('SIGTERM', GIVE_UP_MS);
    expect(tookMs).toBeDefined();
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + LATE_MS);
  }, 120_000);

  it('Redis gone (refused) while it runs: SIGTERM ends it in time', async () => {
    const redis = new URL(REDIS_URL);
    const redisProxy = await new TcpProxy(redis.hostname, Number(redis.port || 6379)).start();
    cleanups.push(() => redisProxy.stop());
    const port = await freePort();
    const child = spawn({
      PORT: String(port),
      DATABASE_URL: database.url,
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    });
    await child.waitForHttp(`http://127.0.0.1:${port}/health/ready`);
    await redisProxy.stop();
    const tookMs = await child.stopWith('SIGTERM', GIVE_UP_MS);
    expect(tookMs).toBeDefined();
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + LATE_MS);
  }, 120_000);

  it('with every dependency up, SIGTERM ends it cleanly (exit code 0) and promptly', async () => {
    const port = await freePort();
    const child = spawn({ PORT: String(port), DATABASE_URL: database.url, REDIS_URL });
    await child.waitForHttp(`http://127.0.0.1:${port}/health/ready`);
    const tookMs = await child.stopWith('SIGTERM', GIVE_UP_MS);
    expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + LATE_MS);
    expect(await child.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});

describe('shutdown of an API process with requests held open', () => {
  const SUBTITLES = '/api/v1/media/subtitles/generate';

  it('ends the kept-alive connection of an answer given while the server closes, so the close does not wait on it', async () => {
    const t = await TestApp.start({ env: { APP_ROLE: 'api' } });
    const lock = new Client({ connectionString: t.database.url });
    await lock.connect();
    let closed = false;
    try {
      // A submit held up in Postgres is still under way when the server begins to close.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE');
      const slow = t.request('POST', SUBTITLES, { as: 'slow', body: { text: 'x' } });
      await until(async () => {
        const { rows } = await lock.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`);
        return rows[0].n > 0;
      });
      closed = true;
      const closing = t.app.close();
      await until(async () => !t.app.getHttpServer().listening);
      const started = Date.now();
      await lock.query('COMMIT');
      const answer = await slow;
      expect(answer.status).toBe(202);
      expect(answer.headers.get('connection')).toBe('close');
      await closing;
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await lock.end();
      if (!closed) await t.app.close();
      await t.close().catch(() => undefined);
    }
  });

  it('lets a wait or a stream that begins once the shutdown has begun end at once', async () => {
    const t = await TestApp.start({ env: { APP_ROLE: 'api' } });
    try {
      const queued = await t.request('POST', SUBTITLES, { as: 'late', body: { text: 'queued' } });
      // The shutdown has begun (its first hooks ran) while the server still takes requests.
      t.app.get(TaskWaiter).beforeApplicationShutdown();
      t.app.get(TaskEventStreamService).beforeApplicationShutdown();
      const started = Date.now();
      const late = await t.request('POST', SUBTITLES, {
        as: 'late',
        headers: { prefer: 'wait=60' },
        body: { text: 'y' },
      });
      expect(late.status).toBe(202);
      const stream = await fetch(`${t.baseUrl}/api/v1/media/tasks/${queued.body.id}/events`, {
        headers: { authorization: `Bearer ${t.token('late')}` },
      });
      expect(stream.status).toBe(200);
      expect(await stream.text()).toBe('retry: 2000\n\n');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await t.close();
    }
  });
});

async function until(predicate: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  await waitUntil('the condition', predicate, { timeoutMs });
}
