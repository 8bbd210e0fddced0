/**
 * Webhook deliveries to a loopback receiver (a process of its own: bench/webhook-receiver.ts), two figures:
 * - throughput: N tasks are submitted with the task queue paused, so N `task.created` deliveries wait; one worker
 *   process then drains them alone, at its defaults (the backlog spread over the receiver's three loopback hosts, as
 *   the default per-host rate would hold one host to 1,000 a second). Floor, in the same run: the same receiver fed by
 *   a bare loop of undici POSTs with the same signing, at the same concurrency.
 * - latency: tasks at a steady rate, every lifecycle event delivered (each sent at once by the process that commits
 *   it, WEBHOOK_SEND_AT_COMMIT); completion → delivery is the time from the event's timestamp (the row's commit) to
 *   the receiver reading the `task.completed` request. The platform process
 *   is new, so the same load runs for BENCH_WEBHOOK_WARMUP_SECONDS first; those figures are printed apart.
 * Both figures are measured with the queues on Redis and with QUEUE_BACKEND=postgres (BENCH_BACKENDS, both by
 * default); the Postgres runs are shorter (BENCH_WEBHOOK_PG_DELIVERIES, BENCH_WEBHOOK_PG_SECONDS) and use a database
 * of their own. The floor does not depend on the backend: measured once.
 */
import { Queue } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { signToken } from '../src/auth/token';
import { QueueName } from '../src/queue/queue.constants';
import { redisOptionsFromUrl } from '../src/queue/redis-options';
import { signatureHeaders } from '../src/webhooks/webhook-signature';
import {
  admin,
  Backend,
  benchBackends,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  PG,
  postgresQueues,
  Receiver,
  type ReceiverHit,
  REDIS,
  sleep,
  stop,
  waitForHttp,
} from './support';

const DB = 'media_bench_webhooks';
/** The database of the runs with QUEUE_BACKEND=postgres (their tasks, deliveries and jobs). */
const DB_PG = 'media_bench_webhooks_pg';
const DELIVERIES = Number(process.env.BENCH_WEBHOOK_DELIVERIES ?? 5000);
/** The backlog of the throughput run on Postgres: smaller, so the whole benchmark stays short. */
const DELIVERIES_PG = Number(process.env.BENCH_WEBHOOK_PG_DELIVERIES ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_WEBHOOK_CONCURRENCY ?? 50);
/** Tasks per second of the latency runs (each task makes about four deliveries: created, started, progress, completed). */
const LATENCY_RATES = (process.env.BENCH_WEBHOOK_RATES ?? '50,100').split(',').map(Number);
const LATENCY_SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);
/** Measured seconds of each latency run on Postgres (shorter; the warm-up is the same). */
const LATENCY_SECONDS_PG = Number(process.env.BENCH_WEBHOOK_PG_SECONDS ?? 5);
/** Seconds of the same load before the measured ones (a freshly started process warms up). */
const LATENCY_WARMUP_SECONDS = Number(process.env.BENCH_WEBHOOK_WARMUP_SECONDS ?? 2);
const SECRET = BENCH_JWT_SECRET;
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

function platform(backend: Backend, env: Record<string, string>): ChildProcess {
  return forkPlatform(backend === 'postgres' ? DB_PG : DB, {
    NODE_ENV: 'development', // the receiver is on loopback: WEBHOOK_ALLOW_PRIVATE is refused in production
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_SECRET,
    WEBHOOK_CONCURRENCY: String(CONCURRENCY),
    QUEUE_BACKEND: backend,
    ...env,
  });
}

/** The platform's `tasks` queue, on the backend of the run, as a process of that run builds it. */
function tasksQueue(backend: Backend, prefix: string): { queue: Queue; close: () => Promise<void> } {
  if (backend === 'postgres') {
    const queues = postgresQueues(`${PG}/${DB_PG}`);
    return { queue: queues.createQueue(QueueName.Tasks), close: () => queues.onApplicationShutdown() };
  }
  const queue = new Queue('tasks', { connection: redisOptionsFromUrl(REDIS) as never, prefix: `{${prefix}}` });
  return { queue, close: () => queue.close() };
}

/** Empties the queues of the Postgres runs' database, so the next run starts as a fresh Redis prefix would. */
async function emptyPostgresQueues(): Promise<void> {
  const queues = postgresQueues(`${PG}/${DB_PG}`);
  try {
    for (const name of [QueueName.Tasks, QueueName.Webhooks])
      await queues.createQueue(name).obliterate({ force: true });
  } finally {
    await queues.onApplicationShutdown();
  }
}

async function submit(base: string, token: string, body: string): Promise<void> {
  const res = await fetch(`${base}/api/v1/media/subtitles/generate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function waitForHits(receiver: Receiver, count: number, timeoutMs = 180_000): Promise<ReceiverHit[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await receiver.count();
    if (got >= count) return receiver.take();
    if (Date.now() > deadline) throw new Error(`only ${got} of ${count} deliveries arrived`);
    await sleep(50);
  }
}

function rate(hits: ReceiverHit[]): number {
  const span = hits[hits.length - 1].at - hits[0].at;
  return Math.round((hits.length - 1) / (span / 1000));
}

/** The floor: signed POSTs to the same receiver from a bare loop, CONCURRENCY at a time. */
async function floor(receiver: Receiver): Promise<number> {
  await receiver.take();
  const url = receiver.url;
  const agent = new Agent();
  const body = JSON.stringify({ event_type: 'task.created', timestamp: new Date().toISOString(), sequence: 1 });
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < DELIVERIES) {
        const id = `msg_${next++}`;
        const headers = signatureHeaders(WEBHOOK_SECRET, { id, body, at: new Date(), event: 'task.created' });
        const res = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
          dispatcher: agent,
        });
        await res.body.dump();
      }
    }),
  );
  await agent.close();
  return rate(await waitForHits(receiver, DELIVERIES));
}

async function throughput(receiver: Receiver, prefix: string, backend: Backend, deliveries: number): Promise<number> {
  const { queue: tasks, close } = tasksQueue(backend, prefix);
  await tasks.pause(); // the tasks wait: only their task.created deliveries run
  // The API process would send each task.created at once (WEBHOOK_SEND_AT_COMMIT): off here, so the deliveries
  // wait as a backlog of `webhook.deliver` jobs, what a worker drains after an outage or a burst over its slots.
  const api = platform(backend, {
    APP_ROLE: 'api',
    PORT: '3931',
    REDIS_PREFIX: prefix,
    WEBHOOK_SEND_AT_COMMIT: 'false',
  });
  await waitForHttp('http://127.0.0.1:3931/health/live');
  const token = signToken(SECRET, { sub: 'bench' });
  // The backlog goes to the receiver's three hosts in turn: at the default WEBHOOK_HOST_RATE_PER_SECOND (1,000), one
  // host would hold the drain to its rate by design, as it protects a receiver.
  const bodies = receiver.urls.map((url) =>
    JSON.stringify({ text: 'Hello.', webhook_url: url, webhook_events: ['task.created'] }),
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < deliveries) await submit('http://127.0.0.1:3931', token, bodies[next++ % bodies.length]);
    }),
  );
  await receiver.take(); // nothing was delivered yet (no worker); start counting now
  const worker = platform(backend, { APP_ROLE: 'worker', PORT: '3932', REDIS_PREFIX: prefix });
  try {
    return rate(await waitForHits(receiver, deliveries));
  } finally {
    await stop(worker);
    await stop(api);
    await tasks.obliterate({ force: true });
    await close();
    if (backend === 'postgres') await emptyPostgresQueues();
  }
}

async function latency(
  receiver: Receiver,
  prefix: string,
  perSecond: number,
  backend: Backend,
  seconds: number,
): Promise<Latency> {
  const app = platform(backend, { APP_ROLE: 'all', PORT: '3933', REDIS_PREFIX: prefix });
  await waitForHttp('http://127.0.0.1:3933/health/live');
  await receiver.take();
  const token = signToken(SECRET, { sub: 'bench' });
  const body = JSON.stringify({ text: 'Hello there.', webhook_url: receiver.url, cache: 'bypass' });
  /** Submits at the rate for `seconds`, then answers the completion → delivery delays, sorted. */
  const phase = async (seconds: number): Promise<number[]> => {
    const total = Math.round(perSecond * seconds);
    const started = Date.now();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = started + (i * 1000) / perSecond;
      if (due > Date.now()) await sleep(due - Date.now());
      pending.push(submit('http://127.0.0.1:3933', token, body));
    }
    await Promise.all(pending);
    const completed: ReceiverHit[] = [];
    const deadline = Date.now() + 60_000;
    while (completed.length < total && Date.now() < deadline) {
      await sleep(100);
      completed.push(...(await receiver.take()).filter((h) => h.event === 'task.completed'));
    }
    return completed.map((h) => h.at - h.eventAt).sort((a, b) => a - b);
  };
  try {
    // The process has just started: its first requests pay for loading code, compiling it and opening connections
    // (a few hundred ms). The same load for a while first, reported apart, so the figure is that of a warm process.
    const warm = await phase(LATENCY_WARMUP_SECONDS);
    if (warm.length)
      process.stderr.write(
        `  warm-up (not counted): p99 ${percentile(warm, 99)} ms, max ${warm[warm.length - 1]} ms\n`,
      );
    const delays = await phase(seconds);
    return {
      backend,
      perSecond,
      p50: percentile(delays, 50),
      p90: percentile(delays, 90),
      p99: percentile(delays, 99),
      max: delays[delays.length - 1],
      n: delays.length,
    };
  } finally {
    await stop(app);
    if (backend === 'postgres') await emptyPostgresQueues();
  }
}

interface Latency {
  backend: Backend;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  n: number;
}

const ON_POSTGRES = 'QUEUE_BACKEND=postgres, ';

async function main(): Promise<void> {
  const backends = benchBackends();
  for (const db of [DB, DB_PG]) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  const prefix = `benchwh${process.pid}`;
  const receiver = await Receiver.start();
  try {
    const rows: Record<string, string | number>[] = [];
    const latencies: Latency[] = [];
    let bare = 0;
    for (const backend of backends) {
      const began = Date.now();
      const onPg = backend === 'postgres';
      const where = onPg ? ON_POSTGRES : '';
      // Boot once to create and migrate the database (and BullMQ's schema in it).
      const boot = platform(backend, { APP_ROLE: 'api', PORT: '3931', REDIS_PREFIX: prefix });
      await waitForHttp('http://127.0.0.1:3931/health/live');
      await stop(boot);

      if (process.env.BENCH_WEBHOOK_ONLY !== 'latency') {
        if (!bare) {
          process.stderr.write('bare signed POSTs (floor)…\n');
          bare = await floor(receiver);
          rows.push({ target: `bare signed POSTs, concurrency ${CONCURRENCY} (floor)`, 'per s': bare, ratio: 1 });
        }
        process.stderr.write(`platform deliveries${onPg ? ' on Postgres' : ''}, worker draining a backlog…\n`);
        const platformRate = await throughput(receiver, `${prefix}t`, backend, onPg ? DELIVERIES_PG : DELIVERIES);
        rows.push({
          target: `platform deliveries, ${where}WEBHOOK_CONCURRENCY ${CONCURRENCY}`,
          'per s': platformRate,
          ratio: Math.round((platformRate / bare) * 1000) / 1000,
        });
      }
      for (const perSecond of process.env.BENCH_WEBHOOK_ONLY === 'throughput' ? [] : LATENCY_RATES) {
        process.stderr.write(`completion → delivery at ${perSecond} tasks/s${onPg ? ' on Postgres' : ''}…\n`);
        const seconds = onPg ? LATENCY_SECONDS_PG : LATENCY_SECONDS;
        latencies.push(await latency(receiver, `${prefix}l${perSecond}`, perSecond, backend, seconds));
      }
      process.stderr.write(`${backend} runs took ${Math.round((Date.now() - began) / 1000)} s\n`);
    }
    if (rows.length) console.table(rows);
    console.table(
      latencies.map((l) => ({
        'task.completed → receiver': `${l.backend === 'postgres' ? ON_POSTGRES : ''}${l.perSecond} tasks/s (≈ ${l.perSecond * 4} deliveries/s)`,
        'p50 ms': l.p50,
        'p90 ms': l.p90,
        'p99 ms': l.p99,
        'max ms': l.max,
        samples: l.n,
      })),
    );
    console.log('targets: ≥ 0.25 of bare signed POSTs, and completion → delivery p99 < 100 ms at 100 tasks/s');
    if (backends.includes('postgres')) {
      console.log(
        `QUEUE_BACKEND=postgres (shortened): a backlog of ${DELIVERIES_PG} deliveries (BENCH_WEBHOOK_PG_DELIVERIES), ` +
          `${LATENCY_SECONDS_PG} s per latency rate (BENCH_WEBHOOK_PG_SECONDS)`,
      );
    }
  } finally {
    receiver.stop();
    for (const suffix of ['', 't', ...LATENCY_RATES.map((r) => `l${r}`)]) await deleteRedisKeys(`${prefix}${suffix}`);
    for (const db of [DB, DB_PG]) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
