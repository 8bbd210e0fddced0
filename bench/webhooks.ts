/**
 * Webhook deliveries to a loopback receiver (a process of its own: bench/webhook-receiver.ts), two figures:
 * - throughput: N tasks are submitted with the task queue paused, so N `task.created` deliveries wait; one worker
 *   process then drains them alone (the per-host delivery rate lifted, see below). Floor, in the same run: the same receiver fed by a bare loop of undici POSTs
 *   with the same signing, at the same concurrency.
 * - latency: tasks at a steady rate, every lifecycle event delivered; completion → delivery is the time from the
 *   event's timestamp (the row's commit) to the receiver reading the `task.completed` request. The platform process
 *   is new, so the same load runs for BENCH_WEBHOOK_WARMUP_SECONDS first; those figures are printed apart.
 */
import { Queue } from 'bullmq';
import { ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { signToken } from '../src/auth/token';
import { redisOptionsFromUrl } from '../src/queue/redis-options';
import { signatureHeaders } from '../src/webhooks/webhook-signature';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, REDIS, sleep, stop, waitForHttp } from './support';

const DB = 'media_bench_webhooks';
const DELIVERIES = Number(process.env.BENCH_WEBHOOK_DELIVERIES ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_WEBHOOK_CONCURRENCY ?? 50);
/** Tasks per second of the latency runs (each task makes about four deliveries: created, started, progress, completed). */
const LATENCY_RATES = (process.env.BENCH_WEBHOOK_RATES ?? '50,100').split(',').map(Number);
const LATENCY_SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);
/** Seconds of the same load before the measured ones (a freshly started process warms up). */
const LATENCY_WARMUP_SECONDS = Number(process.env.BENCH_WEBHOOK_WARMUP_SECONDS ?? 2);
const SECRET = BENCH_JWT_SECRET;
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

interface Hit {
  event: string;
  at: number;
  eventAt: number;
}

/** The receiver, in its own process (bench/webhook-receiver.ts). */
class Receiver {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<Receiver> {
    const child = fork(join(__dirname, 'webhook-receiver.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const { url } = await new Promise<{ url: string }>((resolve) => child.once('message', resolve));
    return new Receiver(child, url);
  }

  private ask<T>(msg: object): Promise<T> {
    return new Promise<T>((resolve) => {
      this.child.once('message', (answer) => resolve(answer as T));
      this.child.send(msg);
    });
  }

  /** Every hit since the last take. */
  async take(): Promise<Hit[]> {
    return (await this.ask<{ hits: Hit[] }>({ take: true })).hits;
  }

  async count(): Promise<number> {
    return (await this.ask<{ count: number }>({ count: true })).count;
  }

  stop(): void {
    this.child.send({ stop: true });
  }
}

function platform(env: Record<string, string>): ChildProcess {
  return forkPlatform(DB, {
    NODE_ENV: 'development', // the receiver is on loopback: WEBHOOK_ALLOW_PRIVATE is refused in production
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_SECRET,
    WEBHOOK_CONCURRENCY: String(CONCURRENCY),
    ...env,
  });
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

async function waitForHits(receiver: Receiver, count: number, timeoutMs = 180_000): Promise<Hit[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await receiver.count();
    if (got >= count) return receiver.take();
    if (Date.now() > deadline) throw new Error(`only ${got} of ${count} deliveries arrived`);
    await sleep(50);
  }
}

function rate(hits: Hit[]): number {
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

async function throughput(receiver: Receiver, prefix: string): Promise<number> {
  const url = receiver.url;
  const connection = redisOptionsFromUrl(REDIS) as never;
  const tasks = new Queue('tasks', { connection, prefix: `{${prefix}}` });
  await tasks.pause(); // the tasks wait: only their task.created deliveries run
  const api = platform({ APP_ROLE: 'api', PORT: '3931', REDIS_PREFIX: prefix });
  await waitForHttp('http://127.0.0.1:3931/health/live');
  const token = signToken(SECRET, { sub: 'bench' });
  const body = JSON.stringify({ text: 'Hello.', webhook_url: url, webhook_events: ['task.created'] });
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next++ < DELIVERIES) await submit('http://127.0.0.1:3931', token, body);
    }),
  );
  await receiver.take(); // nothing was delivered yet (no worker); start counting now
  // The backlog all goes to one host, which WEBHOOK_HOST_RATE_PER_SECOND would hold to its rate by design: lifted
  // here (still counted on every attempt), since this figure is the sender's cost beside bare POSTs.
  const worker = platform({
    APP_ROLE: 'worker',
    PORT: '3932',
    REDIS_PREFIX: prefix,
    WEBHOOK_HOST_RATE_PER_SECOND: '1000000',
  });
  try {
    return rate(await waitForHits(receiver, DELIVERIES));
  } finally {
    await stop(worker);
    await stop(api);
    await tasks.obliterate({ force: true });
    await tasks.close();
  }
}

async function latency(receiver: Receiver, prefix: string, perSecond: number): Promise<Latency> {
  const app = platform({ APP_ROLE: 'all', PORT: '3933', REDIS_PREFIX: prefix });
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
    const completed: Hit[] = [];
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
    const delays = await phase(LATENCY_SECONDS);
    return {
      perSecond,
      p50: percentile(delays, 50),
      p90: percentile(delays, 90),
      p99: percentile(delays, 99),
      max: delays[delays.length - 1],
      n: delays.length,
    };
  } finally {
    await stop(app);
  }
}

interface Latency {
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  n: number;
}

async function main(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const prefix = `benchwh${process.pid}`;
  const receiver = await Receiver.start();
  try {
    const boot = platform({ APP_ROLE: 'api', PORT: '3931', REDIS_PREFIX: prefix });
    await waitForHttp('http://127.0.0.1:3931/health/live');
    await stop(boot);

    const rows: Record<string, string | number>[] = [];
    if (process.env.BENCH_WEBHOOK_ONLY !== 'latency') {
      process.stderr.write('bare signed POSTs (floor)…\n');
      const bare = await floor(receiver);
      process.stderr.write('platform deliveries, worker draining a backlog…\n');
      const platformRate = await throughput(receiver, `${prefix}t`);
      rows.push(
        { target: `bare signed POSTs, concurrency ${CONCURRENCY} (floor)`, 'per s': bare, ratio: 1 },
        {
          target: `platform deliveries, WEBHOOK_CONCURRENCY ${CONCURRENCY}`,
          'per s': platformRate,
          ratio: Math.round((platformRate / bare) * 1000) / 1000,
        },
      );
    }
    const latencies: Latency[] = [];
    for (const perSecond of LATENCY_RATES) {
      process.stderr.write(`completion → delivery at ${perSecond} tasks/s…\n`);
      latencies.push(await latency(receiver, `${prefix}l${perSecond}`, perSecond));
    }
    if (rows.length) console.table(rows);
    console.table(
      latencies.map((l) => ({
        'task.completed → receiver': `${l.perSecond} tasks/s (≈ ${l.perSecond * 4} deliveries/s)`,
        'p50 ms': l.p50,
        'p90 ms': l.p90,
        'p99 ms': l.p99,
        'max ms': l.max,
        samples: l.n,
      })),
    );
    console.log('targets: ≥ 1,000 deliveries/s and completion → delivery p99 < 100 ms');
  } finally {
    receiver.stop();
    for (const suffix of ['', 't', ...LATENCY_RATES.map((r) => `l${r}`)]) await deleteRedisKeys(`${prefix}${suffix}`);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
