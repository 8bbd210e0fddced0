/**
 * Operations figures: the latency of a 50-task batch submit (API role, workers off), and the latency of a task
 * answered by the result cache versus the same task run by its provider (one `all` process, `Prefer: wait`, so the
 * figure is submit → finished task in hand), through the sandbox image provider answering after 300 ms.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, sleep, stop, waitForHttp } from './support';

const DB = 'media_bench_operations';
// Outputs and cache entries of this run only (a cache folder kept from an earlier run would answer the misses).
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-ops-'));
const BATCHES = Number(process.env.BENCH_BATCHES ?? 200);
const WAITS = Number(process.env.BENCH_CACHE_TASKS ?? 100);
/** The sandbox image provider answers after this: a cache hit skips it. */
const PROVIDER_LATENCY_MS = 300;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(ms: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return {
    p50: Math.round(percentile(sorted, 50) * 10) / 10,
    p99: Math.round(percentile(sorted, 99) * 10) / 10,
    mean: Math.round(mean * 10) / 10,
  };
}

async function timed(url: string, token: string, body: unknown, headers: Record<string, string> = {}) {
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { ms: performance.now() - started, status: res.status, text };
}

/** `count` requests, `parallel` at a time; each answer must have `expected` status. */
async function run(
  count: number,
  parallel: number,
  call: (i: number) => Promise<{ ms: number; status: number; text: string }>,
  expected: number,
): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const r = await call(i);
        if (r.status !== expected) throw new Error(`answered ${r.status}: ${r.text.slice(0, 300)}`);
        times.push(r.ms);
      }
    }),
  );
  return times;
}

async function main(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const prefix = `benchops${process.pid}`;
  const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
  const rows: Record<string, string | number>[] = [];
  const children: ChildProcess[] = [];
  try {
    // Batches: API only, so the figure is the submit (validate 50 items, one transaction, 50 jobs).
    const api = forkPlatform(DB, { APP_ROLE: 'api', PORT: '3941', REDIS_PREFIX: `${prefix}b` });
    children.push(api);
    await waitForHttp('http://127.0.0.1:3941/health/live');
    const items = Array.from({ length: 50 }, (_, i) => ({
      task_type: 'subtitle_generation',
      input_data: { text: `Line ${i}. Another line.` },
    }));
    const single = summary(
      await run(
        BATCHES,
        4,
        () => timed('http://127.0.0.1:3941/api/v1/media/subtitles/generate', token, items[0].input_data),
        202,
      ),
    );
    const batch = summary(
      await run(BATCHES, 4, () => timed('http://127.0.0.1:3941/api/v1/media/batch', token, items), 202),
    );
    rows.push(
      { target: 'one task submit (concurrency 4)', 'p50 ms': single.p50, 'p99 ms': single.p99, 'mean ms': single.mean },
      {
        target: 'batch of 50 tasks submit (concurrency 4)',
        'p50 ms': batch.p50,
        'p99 ms': batch.p99,
        'mean ms': batch.mean,
      },
    );
    await stop(api);

    // The cache: submit → finished task, waited for (Prefer: wait), one request at a time.
    const all = forkPlatform(DB, {
      APP_ROLE: 'all',
      PORT: '3942',
      REDIS_PREFIX: `${prefix}c`,
      PROVIDERS_MODE: 'sandbox',
      SANDBOX_PORT: '4150',
      SANDBOX_LATENCY_MS: String(PROVIDER_LATENCY_MS),
      CACHE_DIR: join(SCRATCH, 'cache'),
      STORAGE_DIR: join(SCRATCH, 'outputs'),
    });
    children.push(all);
    await waitForHttp('http://127.0.0.1:3942/health/live');
    const url = 'http://127.0.0.1:3942/api/v1/media/images/generate';
    const wait = { prefer: 'wait=10' };
    const body = { prompt: 'a lighthouse at dawn', size: '512x512', model: 'dall-e-2' };
    await timed(url, token, body, wait); // warms the cache
    const cached = summary(await run(WAITS, 1, () => timed(url, token, body, wait), 200));
    const provider = summary(
      await run(WAITS, 1, (i) => timed(url, token, { ...body, prompt: `${body.prompt} ${i}` }, wait), 200),
    );
    rows.push(
      {
        target: 'task run by its provider, submit → finished',
        'p50 ms': provider.p50,
        'p99 ms': provider.p99,
        'mean ms': provider.mean,
      },
      {
        target: 'task answered by the cache, submit → finished',
        'p50 ms': cached.p50,
        'p99 ms': cached.p99,
        'mean ms': cached.mean,
      },
    );
  } finally {
    for (const child of children) await stop(child);
    await sleep(200);
    await deleteRedisKeys(`${prefix}b`);
    await deleteRedisKeys(`${prefix}c`);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
    rmSync(SCRATCH, { recursive: true, force: true });
  }
  console.table(rows);
  console.log(
    `${BATCHES} submits of each kind; ${WAITS} waited image tasks of each kind ` +
      `(the sandbox provider answers after ${PROVIDER_LATENCY_MS} ms)`,
  );
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
