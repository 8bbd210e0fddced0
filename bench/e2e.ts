/**
 * End-to-end tasks per second through the sandbox (zero-latency provider emulators), two scenarios.
 *
 * Draining a backlog: tasks are submitted with no worker running, then one worker process drains them at
 * WORKER_CONCURRENCY 10, 50 and 200. The floor, measured in the same run on the same Redis, is raw BullMQ draining
 * no-op jobs at concurrency 50.
 * With QUEUE_BACKEND=postgres (BENCH_BACKENDS, both by default) the same runs, shorter (BENCH_E2E_PG_TASKS), on a
 * database of their own, beside raw BullMQ on its Postgres backend (a plain Worker doing nothing, concurrency 50,
 * built as the platform builds its workers) in that database.
 * Throughput = tasks / (last completed_at − first started_at), read from Postgres. Each drain also reports the CPU time
 * per task of its parties (support.ts cpuParties: the worker, the API process that hosts the emulators on Redis,
 * Postgres, Redis, the whole machine) and the machine's CPU per task that 0.13 of the floor would leave.
 *
 * At the defaults (BENCH_E2E_DEFAULTS=0 skips it): one process as `npm start` runs it (APP_ROLE=all, sandbox
 * providers, nothing tuned; webhooks to loopback allowed, since the receiver is there), BENCH_E2E_DEFAULTS_TASKS
 * (5,000) subtitle tasks submitted by 50 clients (a user each), every task with a completion webhook to a receiver in
 * a process of its own (bench/webhook-receiver.ts). Submit rate = tasks / time to accept them all; end-to-end rate =
 * tasks / (last completed_at − first submit); its floor is the submit rate of the same process with no workers
 * (APP_ROLE=api), target ≥ 0.8 of it. Then the same with WORKER_CONCURRENCY 5, 100 and 300 beside the default.
 */
import { Queue, Worker } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { QueueName } from '../src/queue/queue.constants';
import { redisOptionsFromUrl } from '../src/queue/redis-options';
import {
  admin,
  Backend,
  benchBackends,
  cpuParties,
  cpuPerUnit,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  PG,
  postgresQueues,
  processUsage,
  Receiver,
  REDIS,
  sleep,
  stop,
  waitForHttp,
} from './support';

const DB = 'media_bench_e2e';
/** The database of the runs with QUEUE_BACKEND=postgres: their tasks, their jobs and the Postgres floor's. */
const DB_PG = 'media_bench_e2e_pg';
const TASKS = Number(process.env.BENCH_E2E_TASKS ?? 10000);
/** Tasks of each run on Postgres, whose drains are slower: fewer, so the whole benchmark stays short. */
const TASKS_PG = Number(process.env.BENCH_E2E_PG_TASKS ?? 1000);
/**
 * DATABASE_POOL_SIZE of the worker on Postgres: its queues' pool (that + 3), TypeORM's and the SQL client's are each
 * that big, and all three must fit in the server's max_connections (100 by default) beside the API process.
 */
const PG_POOL_MAX = Number(process.env.BENCH_E2E_PG_POOL ?? 25);
const CONCURRENCIES = (process.env.BENCH_E2E_CONCURRENCY ?? '10,50,200').split(',').map(Number);
/** The drain runs (BENCH_E2E_DRAIN=0 skips them) and the runs at the defaults (BENCH_E2E_DEFAULTS=0 skips those). */
const DRAIN = process.env.BENCH_E2E_DRAIN !== '0';
const DEFAULTS = process.env.BENCH_E2E_DEFAULTS !== '0';
const DEFAULTS_DB = 'media_bench_e2e_defaults';
const CPU_COLUMN = 'CPU ms/task worker / api / pg / redis / machine';
const DEFAULTS_TASKS = Number(process.env.BENCH_E2E_DEFAULTS_TASKS ?? 5000);
const DEFAULTS_CLIENTS = Number(process.env.BENCH_E2E_DEFAULTS_CLIENTS ?? 50);
/** WORKER_CONCURRENCY of the runs at the defaults; `default` leaves it unset. */
const DEFAULTS_CONCURRENCIES = (process.env.BENCH_E2E_DEFAULTS_CONCURRENCY ?? 'default,5,100,300').split(',');
// Outputs of the runs go to a folder of their own, removed at the end.
const STORAGE = mkdtempSync(join(tmpdir(), 'media-bench-e2e-'));
const SECRET = BENCH_JWT_SECRET;

function platform(backend: Backend, env: Record<string, string>): ChildProcess {
  return forkPlatform(backend === 'postgres' ? DB_PG : DB, {
    PROVIDERS_MODE: 'sandbox',
    STORAGE_DIR: STORAGE,
    QUEUE_BACKEND: backend,
    ...env,
  });
}

/**
 * Submits `count` tasks over HTTP to `path`, one client per token (each sends its next task once the last one was
 * accepted); `body(i)` is task i. Answers when the first submit was sent and the last one accepted.
 */
async function submit(
  url: string,
  tokens: string[],
  count: number,
  path: string,
  body: (i: number) => string,
): Promise<{ first: number; last: number }> {
  let next = 0;
  const first = Date.now();
  await Promise.all(
    tokens.map(async (token) => {
      while (next < count) {
        const res = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: body(next++),
        });
        if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
  return { first, last: Date.now() };
}

// Identical tasks: the cache would answer all but the first; this measures the provider path.
const IMAGE_TASK = JSON.stringify({
  prompt: 'a lighthouse at dawn',
  size: '512x512',
  model: 'dall-e-2',
  cache: 'bypass',
});

interface RunResult {
  tps: number;
  failed: number;
  /** The worker process: resident memory once booted and at most during the run (MiB), CPU share of one core. */
  rssIdleMb: number;
  rssPeakMb: number;
  cpuShare: number;
  cpu: CpuPerTask;
}

async function platformRun(backend: Backend, concurrency: number, prefix: string, tasks: number): Promise<RunResult> {
  const db = backend === 'postgres' ? DB_PG : DB;
  await admin((c) => c.query(`TRUNCATE tasks CASCADE`), db);
  const api = platform(backend, { APP_ROLE: 'api', PORT: '3921', REDIS_PREFIX: prefix, SANDBOX_PORT: '4120' });
  await waitForHttp('http://127.0.0.1:3921/health/live');
  const token = signToken(SECRET, { sub: 'bench' });
  await submit(
    'http://127.0.0.1:3921',
    Array(32).fill(token),
    tasks,
    '/api/v1/media/images/generate',
    () => IMAGE_TASK,
  );
  // On Postgres the API process goes before the worker comes: its idle connections would count against the server's.
  if (backend === 'postgres') await stop(api);
  const worker = platform(backend, {
    APP_ROLE: 'worker',
    PORT: '3922',
    REDIS_PREFIX: prefix,
    SANDBOX_PORT: '4120',
    WORKER_CONCURRENCY: String(concurrency),
    DATABASE_POOL_SIZE: String(Math.min(backend === 'postgres' ? PG_POOL_MAX : 50, concurrency + 5)),
  });
  try {
    await waitForHttp('http://127.0.0.1:3922/health/live');
    const idle = processUsage(worker.pid!);
    // On Redis the API process stays up, and the sandbox's emulators the worker calls are its (the worker finds their
    // ports taken and shares them); on Postgres the worker hosts them.
    const parties = () => cpuParties({ worker: worker.pid!, ...(backend === 'postgres' ? {} : { api: api.pid! }) });
    const cpuBefore = parties();
    const startedAt = Date.now();
    let peak = idle.rssMb;
    let cpuAfter = cpuBefore;
    const deadline = Date.now() + 300_000;
    for (;;) {
      peak = Math.max(peak, processUsage(worker.pid!).rssMb);
      const [{ done }] = await admin(
        (c) =>
          c
            .query<{ done: number }>(`SELECT count(*)::int AS done FROM tasks WHERE status IN ('completed','failed')`)
            .then((r) => r.rows),
        db,
      );
      if (done >= tasks) {
        cpuAfter = parties();
        break;
      }
      if (Date.now() > deadline) throw new Error(`only ${done} of ${tasks} tasks finished`);
      await sleep(200);
    }
    const [row] = await admin(
      (c) =>
        c
          .query<{ span_ms: number; failed: number }>(
            `SELECT extract(epoch FROM max(completed_at) - min(started_at)) * 1000 AS span_ms,
                    count(*) FILTER (WHERE status = 'failed')::int AS failed FROM tasks`,
          )
          .then((r) => r.rows),
      db,
    );
    const cpu = processUsage(worker.pid!).cpuSeconds - idle.cpuSeconds;
    return {
      tps: Math.round(tasks / (Number(row.span_ms) / 1000)),
      failed: row.failed,
      rssIdleMb: idle.rssMb,
      rssPeakMb: peak,
      cpuShare: cpu / ((Date.now() - startedAt) / 1000),
      cpu: cpuPerUnit(cpuBefore, cpuAfter, tasks),
    };
  } finally {
    await stop(worker);
    await stop(api);
    await deleteRedisKeys(prefix);
    if (backend === 'postgres') await obliteratePostgres([QueueName.Tasks, QueueName.Webhooks]);
  }
}

/** Empties queues of the Postgres runs' database (completed jobs stay there for QUEUE_JOB_TTL_SECONDS). */
async function obliteratePostgres(names: string[]): Promise<void> {
  const queues = postgresQueues(`${PG}/${DB_PG}`);
  try {
    for (const name of names) await queues.createQueue(name as QueueName).obliterate({ force: true });
  } finally {
    await queues.onApplicationShutdown();
  }
}

/**
 * Raw BullMQ draining `count` no-op jobs at `concurrency`: on Redis (a key prefix of its own), or on BullMQ's Postgres
 * backend built as the platform builds it, in the Postgres runs' database (a queue of its own, emptied after).
 */
async function rawBullmq(
  backend: Backend,
  concurrency: number,
  prefix: string,
  count: number,
): Promise<{ tps: number; cpu: CpuPerTask }> {
  const connection = redisOptionsFromUrl(REDIS) as never;
  // The pool a platform worker of that concurrency is given (platformRun).
  const postgres =
    backend === 'postgres' ? postgresQueues(`${PG}/${DB_PG}`, Math.min(PG_POOL_MAX, concurrency + 5)) : undefined;
  const queue = postgres
    ? postgres.createQueue('raw' as QueueName)
    : new Queue('raw', { connection, prefix: `{${prefix}}` });
  for (let i = 0; i < count; i += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({
        name: 'noop',
        data: { n: i + j },
        opts: { removeOnComplete: true },
      })),
    );
  }
  let done = 0;
  let first = 0;
  let last = 0;
  const cpuBefore = { ...cpuParties(), bench: process.cpuUsage() };
  const finished = new Promise<void>((resolve) => {
    const noop = async () => {
      first ||= Date.now();
    };
    const worker = postgres
      ? postgres.createWorker('raw' as QueueName, noop, { concurrency })
      : new Worker('raw', noop, { connection, prefix: `{${prefix}}`, concurrency });
    worker.on('completed', () => {
      last = Date.now();
      if (++done === count) void worker.close().then(() => resolve());
    });
  });
  await finished;
  const { bench, ...parties } = cpuBefore;
  const own = process.cpuUsage(bench);
  // The floor's worker is this process: its time in microseconds.
  const cpu = {
    ...cpuPerUnit(parties, cpuParties(), count),
    worker: Math.round((own.user + own.system) / count / 10) / 100,
  };
  await queue.obliterate({ force: true });
  if (postgres) await postgres.onApplicationShutdown();
  else await queue.close();
  return { tps: Math.round(count / ((last - first) / 1000)), cpu };
}

/** CPU ms per task or job: the worker process, Postgres, Redis and the whole machine (bench/support cpuParties). */
type CpuPerTask = Record<string, number>;

function cpuColumn(cpu: CpuPerTask): string {
  return [cpu.worker, cpu.api ?? 0, cpu.postgres, cpu['redis-server'], cpu.machine]
    .map((ms) => ms.toFixed(2))
    .join(' / ');
}

interface DefaultsRun {
  /** Tasks accepted per second while the clients submitted. */
  submitRate: number;
  /** Tasks completed per second from the first submit to the last completion (all-in-one runs). */
  e2eRate?: number;
  failed?: number;
  webhooks?: number;
  /** Seconds from the first submit to the last webhook received. */
  webhooksDoneS?: number;
  rssPeakMb?: number;
}

/**
 * One process as `npm start` runs it (APP_ROLE `role`; WORKER_CONCURRENCY left at its default unless `concurrency`
 * names one): DEFAULTS_TASKS subtitle tasks, each with a completion webhook, from DEFAULTS_CLIENTS clients.
 */
async function defaultsRun(role: 'all' | 'api', concurrency: string, receiver: Receiver, prefix: string) {
  await admin((c) => c.query(`TRUNCATE tasks CASCADE`), DEFAULTS_DB);
  await receiver.take();
  const app = forkPlatform(DEFAULTS_DB, {
    // What forkPlatform sets for the drain runs, back to the defaults `npm start` has.
    NODE_ENV: 'development',
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MINUTE: '600',
    // The receiver is on loopback, which webhooks refuse unless told.
    WEBHOOK_ALLOW_PRIVATE: 'true',
    PROVIDERS_MODE: 'sandbox',
    STORAGE_DIR: STORAGE,
    APP_ROLE: role,
    PORT: '3923',
    REDIS_PREFIX: prefix,
    SANDBOX_PORT: '4130',
    ...(concurrency === 'default' ? {} : { WORKER_CONCURRENCY: concurrency }),
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, processUsage(app.pid!).rssMb)), 200);
  try {
    await waitForHttp('http://127.0.0.1:3923/health/live');
    const tokens = Array.from({ length: DEFAULTS_CLIENTS }, (_, k) => signToken(SECRET, { sub: `client-${k}` }));
    const task = (i: number) =>
      JSON.stringify({
        text: `Line ${i} of the show. Welcome back, and thank you for watching.`,
        webhook_url: receiver.url,
        webhook_secret: WEBHOOK_SECRET,
        webhook_events: ['task.completed', 'task.failed'],
      });
    const { first, last } = await submit('http://127.0.0.1:3923', tokens, DEFAULTS_TASKS, SUBTITLES, task);
    const run: DefaultsRun = { submitRate: Math.round(DEFAULTS_TASKS / ((last - first) / 1000)) };
    if (role === 'api') return run;
    const deadline = Date.now() + 600_000;
    let done = 0;
    while ((done = await finishedTasks(DEFAULTS_DB)) < DEFAULTS_TASKS) {
      if (Date.now() > deadline) throw new Error(`only ${done} of ${DEFAULTS_TASKS} tasks finished`);
      await sleep(200);
    }
    const [row] = await admin(
      (c) =>
        c
          .query<{ last_ms: number; failed: number }>(
            `SELECT extract(epoch FROM max(completed_at)) * 1000 AS last_ms,
                    count(*) FILTER (WHERE status = 'failed')::int AS failed FROM tasks`,
          )
          .then((r) => r.rows),
      DEFAULTS_DB,
    );
    run.e2eRate = Math.round(DEFAULTS_TASKS / ((Number(row.last_ms) - first) / 1000));
    run.failed = row.failed;
    // The webhooks of the last tasks are still on their way: wait for them (a minute at most).
    const hits: { at: number }[] = [];
    const hooksDeadline = Date.now() + 60_000;
    while (hits.length < DEFAULTS_TASKS && Date.now() < hooksDeadline) {
      hits.push(...(await receiver.take()));
      await sleep(100);
    }
    run.webhooks = hits.length;
    run.webhooksDoneS = hits.length ? Math.round((Math.max(...hits.map((h) => h.at)) - first) / 100) / 10 : undefined;
    run.rssPeakMb = peak;
    return run;
  } finally {
    clearInterval(sampler);
    await stop(app);
    await deleteRedisKeys(prefix);
  }
}

const SUBTITLES = '/api/v1/media/subtitles/generate';
/** The tasks' own signing secret (a deployment has none at the defaults). */
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

async function finishedTasks(db: string): Promise<number> {
  const [{ done }] = await admin(
    (c) =>
      c
        .query<{ done: number }>(`SELECT count(*)::int AS done FROM tasks WHERE status IN ('completed','failed')`)
        .then((r) => r.rows),
    db,
  );
  return done;
}

/** The scenario at the defaults: the submit floor (no workers), then the default process and the other concurrencies. */
async function atDefaults(prefix: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DEFAULTS_DB} WITH (FORCE)`));
  // Boot once to create and migrate the database.
  const boot = forkPlatform(DEFAULTS_DB, { APP_ROLE: 'api', PORT: '3923', REDIS_PREFIX: prefix, SANDBOX_PORT: '4130' });
  await waitForHttp('http://127.0.0.1:3923/health/live');
  await stop(boot);
  const receiver = await Receiver.start();
  try {
    process.stderr.write(`defaults: submits alone (APP_ROLE=api)…\n`);
    const floor = (await defaultsRun('api', 'default', receiver, `${prefix}da`)).submitRate;
    const rows: Record<string, string | number>[] = [
      { target: 'submits alone, same defaults, APP_ROLE=api (floor)', 'per s': floor, ratio: 1 },
    ];
    for (const concurrency of DEFAULTS_CONCURRENCIES) {
      process.stderr.write(`defaults: all-in-one, WORKER_CONCURRENCY ${concurrency}…\n`);
      const run = await defaultsRun('all', concurrency, receiver, `${prefix}d${concurrency}`);
      rows.push({
        target:
          concurrency === 'default'
            ? 'end to end, npm start defaults (APP_ROLE=all)'
            : `end to end, APP_ROLE=all, WORKER_CONCURRENCY ${concurrency}`,
        'per s': run.e2eRate!,
        ratio: Math.round((run.e2eRate! / floor) * 100) / 100,
        'submits per s': run.submitRate,
        'e2e / own submits': Math.round((run.e2eRate! / run.submitRate) * 100) / 100,
        webhooks: `${run.webhooks} (last at ${run.webhooksDoneS} s)`,
        'peak MiB': run.rssPeakMb!,
        ...(run.failed ? { failed: run.failed } : {}),
      });
    }
    console.table(rows);
    console.log(
      `${DEFAULTS_TASKS} subtitle tasks with a completion webhook each, from ${DEFAULTS_CLIENTS} clients, one process ` +
        `at npm start's defaults; end to end = tasks / (last completion − first submit); target ≥ 0.8 of the submit floor`,
    );
  } finally {
    receiver.stop();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DEFAULTS_DB} WITH (FORCE)`));
  }
}

async function main(): Promise<void> {
  const backends = DRAIN ? benchBackends() : [];
  const prefix = `benche2e${process.pid}`;
  const rows: Record<string, string | number>[] = [];
  /** The machine's CPU per task (ms) a drain at 0.13 of the floor leaves, on each backend. */
  const budgets: { backend: Backend; ms: number }[] = [];
  for (const backend of backends) {
    const began = Date.now();
    const onPg = backend === 'postgres';
    const db = onPg ? DB_PG : DB;
    const tasks = onPg ? TASKS_PG : TASKS;
    const where = onPg ? ', QUEUE_BACKEND=postgres' : '';
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
    // Boot once to create and migrate the database (and BullMQ's schema in it).
    const boot = platform(backend, { APP_ROLE: 'api', PORT: '3921', REDIS_PREFIX: prefix, SANDBOX_PORT: '4120' });
    await waitForHttp('http://127.0.0.1:3921/health/live');
    await stop(boot);

    process.stderr.write(`raw BullMQ floor${onPg ? ' on Postgres' : ''}…\n`);
    const raw = await rawBullmq(backend, 50, `${prefix}raw`, tasks * 3);
    const floor = raw.tps;
    budgets.push({ backend, ms: (cpus().length * 1000) / (0.13 * floor) });
    rows.push({
      target: onPg
        ? 'raw BullMQ on Postgres, no-op jobs, concurrency 50 (floor)'
        : 'raw BullMQ no-op jobs, concurrency 50 (floor)',
      'per s': floor,
      ratio: 1,
      [CPU_COLUMN]: cpuColumn(raw.cpu),
    });
    for (const concurrency of CONCURRENCIES) {
      process.stderr.write(`platform${where}, worker concurrency ${concurrency}…\n`);
      const run = await platformRun(backend, concurrency, `${prefix}c${concurrency}`, tasks);
      rows.push({
        target: `platform image tasks through the sandbox${where}, worker concurrency ${concurrency}`,
        'per s': run.tps,
        ratio: Math.round((run.tps / floor) * 1000) / 1000,
        'worker MiB idle / peak': `${run.rssIdleMb} / ${run.rssPeakMb}`,
        'worker CPU': `${Math.round(run.cpuShare * 100)} %`,
        [CPU_COLUMN]: cpuColumn(run.cpu),
        ...(run.failed ? { failed: run.failed } : {}),
      });
    }
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
    process.stderr.write(`${backend} runs took ${Math.round((Date.now() - began) / 1000)} s\n`);
  }

  if (DEFAULTS) await atDefaults(prefix);
  rmSync(STORAGE, { recursive: true, force: true });
  await deleteRedisKeys(prefix);
  if (!DRAIN) return;
  console.table(rows);
  console.log(
    `${TASKS} tasks per platform run (one worker process); targets: ≥ 1,500 tasks/s and ≥ 0.13 of raw BullMQ`,
  );
  console.log(
    `${CPU_COLUMN}: CPU time per task (per job for the floor, whose worker is the bench process) of the worker ` +
      `process, the API process (on Redis: it hosts the sandbox's emulated providers the worker calls; on Postgres ` +
      `the worker does), every Postgres process, Redis and the whole machine (the rest: the bench's own polling, the ` +
      `kernel); at 0.13 of the floor the machine's ${cpus().length} ` +
      `cores leave ${budgets.map((b) => `${b.ms.toFixed(2)} ms per task (${b.backend})`).join(', ')}`,
  );
  if (backends.includes('postgres')) {
    console.log(
      `QUEUE_BACKEND=postgres: ${TASKS_PG} tasks per run and ${TASKS_PG * 3} floor jobs (shortened: BENCH_E2E_PG_TASKS), ` +
        `worker DATABASE_POOL_SIZE at most ${PG_POOL_MAX} (BENCH_E2E_PG_POOL); each ratio is to the floor on its own backend`,
    );
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
