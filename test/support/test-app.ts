import { DynamicModule } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { createServer, AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, SandboxOptions, startSandbox } from '../../sandbox/sandbox';
import { SandboxModule } from '../../sandbox/sandbox.module';
import Redis from 'ioredis';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { configureApp, createFastifyAdapter } from '../../src/app.factory';
import { AppModule } from '../../src/app.module';
import { signToken } from '../../src/auth/token';
import { AppConfig } from '../../src/config/app-config';
import { TaskEvent } from '../../src/events/task-event';
import { TaskEventsService } from '../../src/events/task-events.service';
import { QueueGateway } from '../../src/queue/queue.gateway';
import { MEDIA_PROVIDERS, MediaProvider } from '../../src/providers/provider.port';
import { SubtitleEngineProvider } from '../../src/providers/adapters/subtitles/subtitle-engine.provider';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './databases';
import { waitUntil } from './wait';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

export interface TestAppOptions {
  env?: Record<string, string>;
  /** Replaces the adapters list (default: the real ones). */
  providers?: MediaProvider[];
  /** Reuse a database and Redis prefix (a second process of the same deployment). */
  database?: { name: string; url: string };
  redisPrefix?: string;
  listen?: boolean;
  /** The port to listen on (default: any free one). */
  port?: number;
  /** Start the provider emulators (on free ports) and point the adapters at them; or share another app's. */
  sandbox?: boolean | SandboxOptions | Sandbox;
  /** Modules the deployment under test loads besides AppModule's own (as main.ts passes the sandbox's). */
  modules?: DynamicModule[];
}

/** One running platform for a test file: its own database, its own Redis prefix, real Postgres, Redis and BullMQ. */
export class TestApp {
  readonly events: TaskEvent[] = [];

  private constructor(
    readonly app: NestFastifyApplication,
    readonly config: AppConfig,
    readonly database: { name: string; url: string },
    readonly redisPrefix: string,
    readonly baseUrl: string,
    private readonly ownsDatabase: boolean,
    readonly sandbox: Sandbox | undefined,
    private readonly ownsSandbox: boolean,
  ) {
    app.get(TaskEventsService).events$.subscribe((e) => this.events.push(e));
    const dir = config.storage.localDir;
    TestApp.openFolders.set(dir, (TestApp.openFolders.get(dir) ?? 0) + 1);
  }

  /** Storage folders of the instances open now, and how many use each. */
  private static readonly openFolders = new Map<string, number>();

  static async start(options: TestAppOptions = {}): Promise<TestApp> {
    const database = options.database ?? (await createTestDatabase());
    const redisPrefix = options.redisPrefix ?? `t${randomBytes(5).toString('hex')}`;
    let sandbox: Sandbox | undefined;
    if (options.sandbox) {
      sandbox =
        typeof options.sandbox === 'object' && 'env' in options.sandbox
          ? options.sandbox
          : await startSandbox({
              basePort: 0,
              // Test media servers live on loopback, as WEBHOOK_ALLOW_PRIVATE below lets the platform reach them.
              allowPrivateAddresses: true,
              ...(typeof options.sandbox === 'object' ? options.sandbox : {}),
            });
    }
    const config = AppConfig.fromEnv({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '5',
      REDIS_URL: REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      QUEUE_BACKEND: TEST_QUEUE_BACKEND,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '60000',
      RECONCILE_GRACE_MS: '0',
      TASK_RETRY_DELAYS: '100,200,300',
      SHUTDOWN_TIMEOUT_MS: '5000',
      // Media servers and receivers in tests live on loopback.
      WEBHOOK_ALLOW_PRIVATE: 'true',
      // Tests make many requests as one user; the rate limit's own tests turn it on.
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '0',
      // Tests run identical tasks and count provider calls; the cache's own tests turn it on.
      CACHE_ENABLED: 'false',
      CACHE_DIR: join(tmpdir(), `media-test-cache-${redisPrefix}`),
      STORAGE_DIR: join(tmpdir(), `media-test-${redisPrefix}`),
      // Without the sandbox, the real providers (or the stubs a test points them at): auto would pick the sandbox.
      ...(sandbox ? { PROVIDERS_MODE: 'sandbox', ...sandbox.env } : { PROVIDERS_MODE: 'live' }),
      ...options.env,
    });
    const modules = [...(sandbox ? [SandboxModule.forRoot(sandbox, config)] : []), ...(options.modules ?? [])];
    const builder = Test.createTestingModule({ imports: [AppModule.forRoot(config, { modules })] });
    if (options.providers) builder.overrideProvider(MEDIA_PROVIDERS).useValue(options.providers);
    const moduleRef = await builder.compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(createFastifyAdapter(config.trustProxy), {
      bufferLogs: true,
    });
    await configureApp(app, config);
    let baseUrl = '';
    if (options.listen !== false) {
      await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
      const address = app.getHttpServer().address() as { port: number };
      baseUrl = `http://127.0.0.1:${address.port}`;
    } else {
      await app.init();
    }
    const ownsSandbox = !!sandbox && !(typeof options.sandbox === 'object' && 'env' in options.sandbox);
    return new TestApp(app, config, database, redisPrefix, baseUrl, !options.database, sandbox, ownsSandbox);
  }

  static queueGatewayToken(): typeof QueueGateway {
    return QueueGateway;
  }

  get dataSource(): DataSource {
    return this.app.get(DataSource);
  }

  token(sub = 'alice', opts: { admin?: boolean; ttl?: string } = {}): string {
    return signToken(TEST_JWT_SECRET, {
      sub,
      admin: opts.admin,
      ttl: opts.ttl,
      issuer: this.config.jwtIssuer,
      audience: this.config.jwtAudience,
    });
  }

  /** fetch against the app, authenticated as `as` (a user id) unless `token` is given (or null for none). */
  async request(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      rawBody?: string;
      as?: string;
      token?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? this.token(opts.as ?? 'alice') : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined = opts.rawBody;
    if (opts.body !== undefined) payload = JSON.stringify(opts.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body: payload });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body, headers: res.headers };
  }

  /** Polls the task row until `predicate` holds (bounded); answers the task as the API shows it. */
  async waitForTask(id: string, predicate: (task: any) => boolean, timeoutMs = 10000): Promise<any> {
    const admin = this.token('admin', { admin: true });
    const read = async () => {
      const res = await this.request('GET', `/api/v1/media/tasks/${id}`, { token: admin });
      return { ok: res.status === 200 && predicate(res.body), task: res.body };
    };
    const { task } = await waitUntil(`task ${id} to match`, read, { timeoutMs, intervalMs: 50, until: (r) => r.ok });
    return task;
  }

  /**
   * Waits until the run job of a task has ended in BullMQ (completed or failed for good, or removed): the worker is
   * done with the task, retries included, so anything it would still have done has been done by then.
   */
  async waitForTaskJobEnded(id: string, timeoutMs = 10000): Promise<void> {
    const queue = this.app.get(QueueGateway);
    const state = async () => {
      const job = await queue.getTaskJob(id);
      return job ? await job.getState() : 'removed';
    };
    // 'unknown': the job was removed between the two reads.
    await waitUntil(`the run job of task ${id} to end`, state, {
      timeoutMs,
      until: (s) => ['completed', 'failed', 'removed', 'unknown'].includes(s),
    });
  }

  /** Waits until the worker has submitted the task to its provider; answers the provider's job as the row keeps it. */
  async waitForProviderJob(id: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const read = async () =>
      (
        await this.dataSource.query<{ provider_job: Record<string, unknown> | null }[]>(
          `SELECT provider_job FROM tasks WHERE id = $1`,
          [id],
        )
      )[0]?.provider_job;
    return (await waitUntil(`task ${id} to be submitted to its provider`, read, { timeoutMs, intervalMs: 50 }))!;
  }

  eventsOf(taskId: string): TaskEvent[] {
    return this.events.filter((e) => e.taskId === taskId);
  }

  async close(): Promise<void> {
    await this.app.close();
    if (this.ownsSandbox) await this.sandbox?.close();
    // Instances of one deployment (same Redis prefix) share their folders: the last one to close removes them.
    const left = (TestApp.openFolders.get(this.config.storage.localDir) ?? 1) - 1;
    if (left > 0) TestApp.openFolders.set(this.config.storage.localDir, left);
    else {
      TestApp.openFolders.delete(this.config.storage.localDir);
      await rm(this.config.storage.localDir, { recursive: true, force: true }).catch(() => undefined);
      await rm(this.config.cache.dir, { recursive: true, force: true }).catch(() => undefined);
    }
    if (this.ownsDatabase) {
      await dropTestDatabase(this.database.name);
      await deleteRedisKeys(this.redisPrefix);
    }
  }
}

/** How many keys of a deployment contain `text` (a job id, a delivery id). */
export async function countRedisKeys(prefix: string, text: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  let count = 0;
  try {
    for (const pattern of [`${prefix}:*${text}*`, `{${prefix}}:*${text}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return count;
}

/** Deletes every key of a deployment (what FLUSHALL would do to it); returns how many there were. */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  let deleted = 0;
  try {
    for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) deleted += await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** A deployment as the tests see it: its database and its Redis prefix. */
export interface Deployment {
  database: { url: string };
  redisPrefix: string;
}

/** One connection to a deployment's database, for BullMQ's tables when its queues are on Postgres. */
async function onQueueTables<T>(database: { url: string }, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: database.url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** How many of the deployment's queue entries (Redis keys, or BullMQ's job rows on Postgres) name `text`. */
export async function countQueueEntries(deployment: Deployment, text: string): Promise<number> {
  if (TEST_QUEUE_BACKEND === 'redis') return countRedisKeys(deployment.redisPrefix, text);
  return onQueueTables(deployment.database, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM bullmq.job WHERE position($1 in id) > 0`,
      [text],
    );
    return rows[0].n;
  });
}

/**
 * What losing the queue's store does to a deployment (FLUSHALL on Redis, BullMQ's tables emptied on Postgres): its
 * jobs, paused flags and job schedulers, and its Redis keys, all gone. Answers how many keys and jobs there were.
 */
export async function loseQueueStore(deployment: Deployment): Promise<number> {
  let lost = await deleteRedisKeys(deployment.redisPrefix);
  if (TEST_QUEUE_BACKEND === 'postgres') {
    lost += await onQueueTables(deployment.database, async (client) => {
      const { rowCount } = await client.query('DELETE FROM bullmq.job');
      await client.query('DELETE FROM bullmq.scheduler');
      await client.query('DELETE FROM bullmq.meta');
      return rowCount ?? 0;
    });
  }
  return lost;
}

/** A port nothing listens on now (for an app that must know its own URL before it starts). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether nothing listens on `port` of loopback now. */
async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (free) await new Promise((resolve) => server.close(resolve));
  return free;
}

/**
 * The first of `count` consecutive ports nothing listens on now: a SANDBOX_PORT for processes that must find one
 * another's emulators, away from the default ports another test's `npm start` may hold.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let all = true;
    for (let i = 0; i < count && all; i++) all = await isFree(base + i);
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** A fixed pause: for a receiver or provider that answers slowly, never to wait for something to happen (waitUntil). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { SubtitleEngineProvider };
