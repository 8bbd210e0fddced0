/**
 * Flows through one platform process (APP_ROLE=all, the defaults a user gets, the sandbox's zero-latency providers),
 * on each queue backend (BENCH_BACKENDS):
 *   - inbound hooks: BENCH_FLOW_HOOKS (500) posted at once, spread over five webhook flows (each hook's limit is
 *     HOOK_RATE_PER_MINUTE, 100): the answer times, p50/p99, beside a bare Fastify server answering the same burst;
 *     every post becomes exactly one run, a resend of 100 of them with the same `webhook-id` makes none, and the 101st
 *     new event of a minute to one hook is answered 429;
 *   - runs per second of a 3-step flow of no-op tasks (three subtitle tasks on the local subtitle engine), from the
 *     first run's creation to the last one's end, and trigger-to-first-step latency (the first step's start − the
 *     run's creation), p50/p99;
 *   - beside them, the same number of single subtitle tasks submitted at once: tasks per second and submit-to-start
 *     latency p50/p99 (started_at − created_at), so a flow's cost over the tasks it runs shows.
 */
import { ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import {
  admin,
  Backend,
  benchBackends,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  sleep,
  stop,
  waitForHttp,
} from './support';

const HOOKS = Number(process.env.BENCH_FLOW_HOOKS ?? 500);
const FLOWS = 5;
const PORT = 3981;
const BASE = `http://127.0.0.1:${PORT}`;
const FLOOR_PORT = 3982;
const STORAGE = mkdtempSync(join(tmpdir(), 'media-bench-flows-'));

const STEPS = ['one', 'two', 'three'].map((id) => ({
  id,
  kind: 'task',
  task_type: 'subtitle_generation',
  input: { text: `{{ trigger.text }} (${id})`, format: 'srt' },
}));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function timed(fn: () => Promise<Response>): Promise<{ ms: number; res: Response }> {
  const started = performance.now();
  const res = await fn();
  await res.arrayBuffer();
  return { ms: performance.now() - started, res };
}

/** Posts every request at once; the answer times and statuses. */
async function burst(requests: (() => Promise<Response>)[]): Promise<{ ms: number[]; statuses: number[] }> {
  const answers = await Promise.all(requests.map((r) => timed(r)));
  return { ms: answers.map((a) => a.ms), statuses: answers.map((a) => a.res.status) };
}

async function rows<T>(db: string, sql: string): Promise<T[]> {
  return admin((c) => c.query(sql).then((r) => r.rows as T[]), db);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function bareFloor(): Promise<number[]> {
  const bare = fork(join(__dirname, 'floor-servers.js'), ['bare', String(FLOOR_PORT), '', '', ''], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    await waitForHttp(`http://127.0.0.1:${FLOOR_PORT}/`);
    const body = JSON.stringify({ text: 'hello' });
    // Warm, then the measured burst.
    await burst(Array.from({ length: 50 }, () => () => post(`http://127.0.0.1:${FLOOR_PORT}/submit`, body, {})));
    const { ms } = await burst(
      Array.from({ length: HOOKS }, () => () => post(`http://127.0.0.1:${FLOOR_PORT}/submit`, body, {})),
    );
    return ms;
  } finally {
    await stop(bare);
  }
}

function post(url: string, body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

async function run(backend: Backend, floor: number[]): Promise<void> {
  const db = `media_bench_flows_${backend}`;
  const prefix = `benchflows${process.pid}`;
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  const platform: ChildProcess = forkPlatform(db, {
    PROVIDERS_MODE: 'sandbox',
    STORAGE_DIR: STORAGE,
    QUEUE_BACKEND: backend,
    PORT: String(PORT),
    SANDBOX_PORT: '4130',
    REDIS_PREFIX: prefix,
  });
  try {
    await waitForHttp(`${BASE}/health/live`);
    const auth = { authorization: `Bearer ${signToken(BENCH_JWT_SECRET, { sub: 'bench' })}` };
    const hooks: string[] = [];
    // One flow more for the warm-up run, so that each measured hook has its whole minute's budget.
    for (let i = 0; i <= FLOWS; i++) {
      const res = await post(
        `${BASE}/api/v1/flows`,
        JSON.stringify({ name: `bench ${i}`, trigger: { type: 'webhook' }, steps: STEPS }),
        auth,
      );
      const flow = (await res.json()) as { hook_url?: string };
      if (res.status !== 201 || !flow.hook_url) throw new Error(`flow create answered ${res.status}`);
      hooks.push(`${BASE}${flow.hook_url}`);
    }
    // One warm-up run, not counted.
    const warmUp = hooks.pop()!;
    await post(warmUp, JSON.stringify({ text: 'warm' }), { 'webhook-id': 'warm' });
    await until('the warm-up run', async () => {
      const [r] = await rows<{ n: number }>(
        db,
        `SELECT count(*)::int AS n FROM flow_runs WHERE finished_at IS NOT NULL`,
      );
      return r.n >= 1;
    });
    await admin((c) => c.query(`TRUNCATE flow_runs CASCADE`), db).catch(() => undefined);

    const events = Array.from({ length: HOOKS }, (_, i) => ({ hook: hooks[i % FLOWS], id: `evt-${i}` }));
    const send = (e: { hook: string; id: string }) => () =>
      post(e.hook, JSON.stringify({ text: `message ${e.id}` }), { 'webhook-id': e.id });
    const hookBurst = await burst(events.map(send));
    const accepted = hookBurst.statuses.filter((s) => s === 202).length;
    await until('every run to end', async () => {
      const [r] = await rows<{ n: number }>(
        db,
        `SELECT count(*)::int AS n FROM flow_runs WHERE finished_at IS NOT NULL`,
      );
      return r.n >= accepted;
    });
    const resent = await burst(events.slice(0, 100).map(send));
    const extra = await timed(() => post(hooks[1], JSON.stringify({ text: 'one more' }), { 'webhook-id': 'extra' }));
    const [runs] = await rows<{ runs: number; completed: number; span_ms: number }>(
      db,
      `SELECT count(*)::int AS runs, count(*) FILTER (WHERE status = 'completed')::int AS completed,
              extract(epoch FROM max(finished_at) - min(created_at)) * 1000 AS span_ms FROM flow_runs`,
    );
    const firstStep = await rows<{ ms: number }>(
      db,
      `SELECT extract(epoch FROM s.started_at - r.created_at) * 1000 AS ms
         FROM flow_runs r JOIN flow_steps s ON s.run_id = r.id AND s.step_id = 'one'`,
    );

    // The same number of single tasks, submitted at once.
    await admin((c) => c.query(`TRUNCATE tasks CASCADE`), db);
    const taskBurst = await burst(
      Array.from(
        { length: HOOKS },
        (_, i) => () =>
          post(`${BASE}/api/v1/media/subtitles/generate`, JSON.stringify({ text: `single ${i}`, format: 'srt' }), auth),
      ),
    );
    await until('every task to end', async () => {
      const [r] = await rows<{ n: number }>(
        db,
        `SELECT count(*)::int AS n FROM tasks WHERE status IN ('completed', 'failed')`,
      );
      return r.n >= HOOKS;
    });
    const [tasks] = await rows<{ span_ms: number }>(
      db,
      `SELECT extract(epoch FROM max(completed_at) - min(created_at)) * 1000 AS span_ms FROM tasks`,
    );
    const taskStart = await rows<{ ms: number }>(
      db,
      `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM tasks`,
    );

    const f = (n: number) => n.toFixed(1);
    const p = (v: number[]) => `p50 ${f(percentile(v, 50))} ms, p99 ${f(percentile(v, 99))} ms`;
    console.log(`\n## Flows on ${backend} (${HOOKS} hooks over ${FLOWS} flows, a 3-step flow of no-op tasks)`);
    console.log(`| measure | value |`);
    console.log(`|---|---|`);
    console.log(`| hook answers (${HOOKS} at once) | ${p(hookBurst.ms)} |`);
    console.log(`| bare Fastify, same burst (floor) | ${p(floor)} |`);
    console.log(`| hook p99 / floor p99 | ${(percentile(hookBurst.ms, 99) / percentile(floor, 99)).toFixed(2)} |`);
    console.log(
      `| answered 202 | ${hookBurst.statuses.filter((s) => s === 202).length} of ${HOOKS}; runs made: ${runs.runs}, completed: ${runs.completed} |`,
    );
    console.log(
      `| resent 100 with the same webhook-id | statuses ${[...new Set(resent.statuses)].join(',')}; runs after: ${(await rows<{ n: number }>(db, `SELECT count(*)::int AS n FROM flow_runs`))[0].n} |`,
    );
    console.log(`| 101st new event in the minute to one hook | ${extra.res.status} |`);
    console.log(`| runs per second (3 task steps each) | ${f(runs.runs / (Number(runs.span_ms) / 1000))} |`);
    console.log(`| trigger to first step start | ${p(firstStep.map((r) => Number(r.ms)))} |`);
    console.log(`| single tasks per second (${HOOKS} at once) | ${f(HOOKS / (Number(tasks.span_ms) / 1000))} |`);
    console.log(`| single task answers | ${p(taskBurst.ms)} |`);
    console.log(`| single task submit to start | ${p(taskStart.map((r) => Number(r.ms)))} |`);
  } finally {
    await stop(platform);
    await deleteRedisKeys(prefix);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  try {
    const floor = await bareFloor();
    for (const backend of benchBackends()) await run(backend, floor);
  } finally {
    rmSync(STORAGE, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
