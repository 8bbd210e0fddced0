/**
 * Scale-out: one backlog of image tasks through sandbox providers that take SANDBOX_LATENCY_MS (200 ms) to answer,
 * drained by 1, 2 and 3 worker processes (APP_ROLE=worker) on the same Postgres and Redis. One API process takes the
 * submits and hosts the emulators (the workers use them: they answer on SANDBOX_PORT), so no worker does the
 * emulators' work. The tasks queue is paused while the workers boot and resumed once every one answers, so each run
 * measures the drain alone: tasks / (last completed_at − resume). The floor of each run, in the same run, is what the
 * provider latency allows: processes × WORKER_CONCURRENCY / latency; the ratio that matters is to one process
 * (target: 3 processes ≥ 2.4 × one while the work is I/O bound).
 * Each process's CPU share (of one core) says where the time went when a run falls short.
 */
import { Queue } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { QueueName } from '../src/queue/queue.constants';
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

const DB = 'media_bench_scale_out';
const TASKS = Number(process.env.BENCH_SCALE_TASKS ?? 2000);
const LATENCY_MS = Number(process.env.BENCH_SCALE_LATENCY_MS ?? 200);
/**
 * WORKER_CONCURRENCY of each worker: 10 keeps one process I/O bound on a small machine (its ceiling, 10 / 200 ms =
 * 50 tasks/s, is well under what its CPU could do); `default` leaves it at the platform's default.
 */
const CONCURRENCY = process.env.BENCH_SCALE_CONCURRENCY ?? '10';
const PROCESSES = (process.env.BENCH_SCALE_PROCESSES ?? '1,2,3').split(',').map(Number);
/**
 * BENCH_SCALE_SHARED_EMULATORS=1: every worker uses the API process's emulators, whose one event loop then serves
 * every provider call of the run; by default each worker hosts its own (a provider's capacity grows with its load).
 */
const SHARED_EMULATORS = process.env.BENCH_SCALE_SHARED_EMULATORS === '1';
/**
 * BENCH_SCALE_ASYNC_COMMIT=1: the database commits without waiting for its WAL flush (synchronous_commit off), to
 * tell how much of a run is spent waiting for the disk.
 */
const ASYNC_COMMIT = process.env.BENCH_SCALE_ASYNC_COMMIT === '1';
const API_PORT = 3941;
const SANDBOX_PORT = '4140';
const STORAGE = mkdtempSync(join(tmpdir(), 'media-bench-scale-out-'));

function platform(env: Record<string, string>): ChildProcess {
  return forkPlatform(DB, {
    PROVIDERS_MODE: 'sandbox',
    SANDBOX_PORT,
    SANDBOX_LATENCY_MS: String(LATENCY_MS),
    STORAGE_DIR: STORAGE,
    ...(CONCURRENCY === 'default' ? {} : { WORKER_CONCURRENCY: CONCURRENCY }),
    ...env,
  });
}

/** `count` image tasks, 32 at a time (the cache bypassed: the runs repeat the same prompts). */
async function submit(count: number): Promise<void> {
  const token = signToken(BENCH_JWT_SECRET, { sub: 'bench' });
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const body = JSON.stringify({
          prompt: `a lighthouse at dawn, ${next++}`,
          size: '512x512',
          model: 'dall-e-2',
          cache: 'bypass',
        });
        const res = await fetch(`http://127.0.0.1:${API_PORT}/api/v1/media/images/generate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body,
        });
        if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
      }
    }),
  );
}

async function counts(): Promise<{ done: number; failed: number; lastMs: number }> {
  const [row] = await admin(
    (c) =>
      c
        .query<{ done: number; failed: number; last_ms: number | null }>(
          `SELECT count(*) FILTER (WHERE status IN ('completed','failed'))::int AS done,
                  count(*) FILTER (WHERE status = 'failed')::int AS failed,
                  extract(epoch FROM max(completed_at)) * 1000 AS last_ms FROM tasks`,
        )
        .then((r) => r.rows),
    DB,
  );
  return { done: row.done, failed: row.failed, lastMs: Number(row.last_ms ?? 0) };
}

interface Run {
  tps: number;
  failed: number;
  /** CPU share (of one core) of each worker, and of the API process that hosts the emulators. */
  workerCpu: number[];
  hostCpu: number;
}

/** A backlog of TASKS drained by `processes` workers started together (the queue paused until all answer). */
async function drain(processes: number, prefix: string): Promise<Run> {
  await admin((c) => c.query(`TRUNCATE tasks CASCADE`), DB);
  const api = platform({ APP_ROLE: 'api', PORT: String(API_PORT), REDIS_PREFIX: prefix });
  const queue = new Queue(QueueName.Tasks, { connection: redisOptionsFromUrl(REDIS) as never, prefix: `{${prefix}}` });
  const workers: ChildProcess[] = [];
  try {
    await waitForHttp(`http://127.0.0.1:${API_PORT}/health/live`);
    await queue.pause();
    await submit(TASKS);
    for (let i = 0; i < processes; i++) {
      const own: Record<string, string> = SHARED_EMULATORS
        ? {}
        : { SANDBOX_PORT: String(Number(SANDBOX_PORT) + 10 * (i + 1)) };
      workers.push(platform({ APP_ROLE: 'worker', PORT: String(API_PORT + 1 + i), REDIS_PREFIX: prefix, ...own }));
    }
    for (let i = 0; i < processes; i++) await waitForHttp(`http://127.0.0.1:${API_PORT + 1 + i}/health/live`);
    const before = [api, ...workers].map((p) => processUsage(p.pid!).cpuSeconds);
    const resumedAt = Date.now();
    await queue.resume();
    const deadline = Date.now() + 600_000;
    let now = await counts();
    while (now.done < TASKS) {
      if (Date.now() > deadline) throw new Error(`only ${now.done} of ${TASKS} tasks finished`);
      await sleep(200);
      now = await counts();
    }
    const seconds = (Date.now() - resumedAt) / 1000;
    const cpu = [api, ...workers].map((p, i) => (processUsage(p.pid!).cpuSeconds - before[i]) / seconds);
    return {
      tps: Math.round(TASKS / ((now.lastMs - resumedAt) / 1000)),
      failed: now.failed,
      hostCpu: cpu[0],
      workerCpu: cpu.slice(1),
    };
  } finally {
    await Promise.all(workers.map((w) => stop(w)));
    await stop(api);
    await queue.close();
    await deleteRedisKeys(prefix);
  }
}

const percent = (share: number) => `${Math.round(share * 100)} %`;

async function main(): Promise<void> {
  const prefix = `benchscale${process.pid}`;
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  // Boot once to create and migrate the database.
  const boot = platform({ APP_ROLE: 'api', PORT: String(API_PORT), REDIS_PREFIX: prefix });
  await waitForHttp(`http://127.0.0.1:${API_PORT}/health/live`);
  await stop(boot);
  if (ASYNC_COMMIT) await admin((c) => c.query(`ALTER DATABASE ${DB} SET synchronous_commit = off`));

  const rows: Record<string, string | number>[] = [];
  let one = 0;
  try {
    for (const processes of PROCESSES) {
      process.stderr.write(`${processes} worker process(es)…\n`);
      const run = await drain(processes, `${prefix}p${processes}`);
      one ||= run.tps;
      const ceiling = CONCURRENCY === 'default' ? undefined : (processes * Number(CONCURRENCY) * 1000) / LATENCY_MS;
      rows.push({
        target: `${processes} worker process${processes > 1 ? 'es' : ''}`,
        'tasks/s': run.tps,
        'vs one': Math.round((run.tps / one) * 100) / 100,
        ...(ceiling
          ? { 'latency ceiling (floor)': ceiling, 'of ceiling': Math.round((run.tps / ceiling) * 100) / 100 }
          : {}),
        'worker CPU each': run.workerCpu.map(percent).join(' · '),
        'API + emulators CPU': percent(run.hostCpu),
        ...(run.failed ? { failed: run.failed } : {}),
      });
    }
  } finally {
    rmSync(STORAGE, { recursive: true, force: true });
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  }
  console.table(rows);
  console.log(
    `${TASKS} image tasks per run, provider latency ${LATENCY_MS} ms (SANDBOX_LATENCY_MS), WORKER_CONCURRENCY ` +
      `${CONCURRENCY} per worker${ASYNC_COMMIT ? ', synchronous_commit off' : ''}; target: 3 processes ≥ 2.4 × one`,
  );
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
