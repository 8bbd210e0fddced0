/**
 * End-to-end tasks per second through the sandbox (zero-latency provider emulators): tasks are submitted with no
 * worker running, then one worker process drains them at WORKER_CONCURRENCY 10, 50 and 200. The floor, measured in
 * the same run on the same Redis, is raw BullMQ draining no-op jobs at concurrency 50.
 * Throughput = tasks / (last completed_at − first started_at), read from Postgres.
 */
import { Queue, Worker } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { redisOptionsFromUrl } from '../src/queue/redis-options';
import {
  admin,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  processUsage,
  REDIS,
  sleep,
  stop,
  waitForHttp,
} from './support';

const DB = 'media_bench_e2e';
const TASKS = Number(process.env.BENCH_E2E_TASKS ?? 10000);
const CONCURRENCIES = (process.env.BENCH_E2E_CONCURRENCY ?? '10,50,200').split(',').map(Number);
// Outputs of the runs go to a folder of their own, removed at the end.
const STORAGE = mkdtempSync(join(tmpdir(), 'media-bench-e2e-'));
const SECRET = BENCH_JWT_SECRET;

function platform(env: Record<string, string>): ChildProcess {
  return forkPlatform(DB, { PROVIDERS_MODE: 'sandbox', STORAGE_DIR: STORAGE, ...env });
}

/** Submits `count` subtitle tasks over HTTP, `parallel` at a time. */
async function submit(url: string, token: string, count: number, parallel = 32): Promise<void> {
  let next = 0;
  // Identical tasks: the cache would answer all but the first; this measures the provider path.
  const body = JSON.stringify({ prompt: 'a lighthouse at dawn', size: '512x512', model: 'dall-e-2', cache: 'bypass' });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        const res = await fetch(`${url}/api/v1/media/images/generate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body,
        });
        if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
}

interface RunResult {
  tps: number;
  failed: number;
  /** The worker process: resident memory once booted and at most during the run (MiB), CPU share of one core. */
  rssIdleMb: number;
  rssPeakMb: number;
  cpuShare: number;
}

async function platformRun(concurrency: number, prefix: string): Promise<RunResult> {
  await admin((c) => c.query(`TRUNCATE tasks CASCADE`), DB);
  const api = platform({ APP_ROLE: 'api', PORT: '3921', REDIS_PREFIX: prefix, SANDBOX_PORT: '4120' });
  await waitForHttp('http://127.0.0.1:3921/health/live');
  await submit('http://127.0.0.1:3921', signToken(SECRET, { sub: 'bench' }), TASKS);
  const worker = platform({
    APP_ROLE: 'worker',
    PORT: '3922',
    REDIS_PREFIX: prefix,
    SANDBOX_PORT: '4120',
    WORKER_CONCURRENCY: String(concurrency),
    DATABASE_POOL_SIZE: String(Math.min(50, concurrency + 5)),
  });
  try {
    await waitForHttp('http://127.0.0.1:3922/health/live');
    const idle = processUsage(worker.pid!);
    const startedAt = Date.now();
    let peak = idle.rssMb;
    const deadline = Date.now() + 300_000;
    for (;;) {
      peak = Math.max(peak, processUsage(worker.pid!).rssMb);
      const [{ done }] = await admin(
        (c) =>
          c
            .query<{ done: number }>(`SELECT count(*)::int AS done FROM tasks WHERE status IN ('completed','failed')`)
            .then((r) => r.rows),
        DB,
      );
      if (done >= TASKS) break;
      if (Date.now() > deadline) throw new Error(`only ${done} of ${TASKS} tasks finished`);
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
      DB,
    );
    const cpu = processUsage(worker.pid!).cpuSeconds - idle.cpuSeconds;
    return {
      tps: Math.round(TASKS / (Number(row.span_ms) / 1000)),
      failed: row.failed,
      rssIdleMb: idle.rssMb,
      rssPeakMb: peak,
      cpuShare: cpu / ((Date.now() - startedAt) / 1000),
    };
  } finally {
    await stop(worker);
    await stop(api);
    await deleteRedisKeys(prefix);
  }
}

async function rawBullmq(concurrency: number, prefix: string): Promise<number> {
  const connection = redisOptionsFromUrl(REDIS) as never;
  const queue = new Queue('raw', { connection, prefix: `{${prefix}}` });
  const count = TASKS * 3;
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
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker(
      'raw',
      async () => {
        first ||= Date.now();
      },
      { connection, prefix: `{${prefix}}`, concurrency },
    );
    worker.on('completed', () => {
      last = Date.now();
      if (++done === count) void worker.close().then(() => resolve());
    });
  });
  await finished;
  await queue.obliterate({ force: true });
  await queue.close();
  return Math.round(count / ((last - first) / 1000));
}

async function main(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const prefix = `benche2e${process.pid}`;
  // Boot once to create and migrate the database.
  const boot = platform({ APP_ROLE: 'api', PORT: '3921', REDIS_PREFIX: prefix, SANDBOX_PORT: '4120' });
  await waitForHttp('http://127.0.0.1:3921/health/live');
  await stop(boot);

  process.stderr.write('raw BullMQ floor…\n');
  const floor = await rawBullmq(50, `${prefix}raw`);
  const rows: Record<string, string | number>[] = [
    { target: 'raw BullMQ no-op jobs, concurrency 50 (floor)', 'per s': floor, ratio: 1 },
  ];
  for (const concurrency of CONCURRENCIES) {
    process.stderr.write(`platform, worker concurrency ${concurrency}…\n`);
    const run = await platformRun(concurrency, `${prefix}c${concurrency}`);
    rows.push({
      target: `platform image tasks through the sandbox, worker concurrency ${concurrency}`,
      'per s': run.tps,
      ratio: Math.round((run.tps / floor) * 1000) / 1000,
      'worker MiB idle / peak': `${run.rssIdleMb} / ${run.rssPeakMb}`,
      'worker CPU': `${Math.round(run.cpuShare * 100)} %`,
      ...(run.failed ? { failed: run.failed } : {}),
    });
  }
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  rmSync(STORAGE, { recursive: true, force: true });
  await deleteRedisKeys(prefix);
  console.table(rows);
  console.log(
    `${TASKS} tasks per platform run (one worker process); targets: ≥ 1,500 tasks/s and ≥ 0.13 of raw BullMQ`,
  );
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
