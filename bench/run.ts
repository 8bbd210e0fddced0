/**
 * `npm run bench`: submit throughput and latency of POST /api/v1/media/subtitles/generate (API role only, workers
 * off, so only the submit path is measured), next to floors measured in the same run: a bare Fastify handler, and a
 * Fastify handler doing a raw `pg` INSERT + BullMQ `add` on the queue backend of the platform it is compared with
 * (Redis; BullMQ's Postgres backend for QUEUE_BACKEND=postgres, in the platform's bench database). BENCH_BACKENDS
 * (default `redis,postgres`) says which backends are measured. Absolute numbers drift on shared machines; the ratios
 * are the result.
 */
import autocannon from 'autocannon';
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { signToken } from '../src/auth/token';
import { paced } from './paced';
import { benchBackends, deleteRedisKeys, processUsage, sleep, waitForHttp } from './support';

const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** BENCH_DB_SUFFIX keeps the databases of two benchmark runs on one Postgres apart. */
const DB = `media_bench${process.env.BENCH_DB_SUFFIX ?? ''}`;
/** The database of the platform with QUEUE_BACKEND=postgres (its tasks and its BullMQ schema) and of its floor. */
const DB_PG = `media_bench_pg${process.env.BENCH_DB_SUFFIX ?? ''}`;
/** The queue the Postgres floor adds to, beside the platform's own in the same schema. */
const PG_FLOOR_QUEUE = 'floor';
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** The kept-alive sockets the evenly paced requests at half rate go over (a request waits for a free one). */
const PACED_SOCKETS = Number(process.env.BENCH_PACED_SOCKETS ?? 16);
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const BODY = JSON.stringify({ text: 'The quick brown fox jumps over the lazy dog. It was not amused.', format: 'srt' });

const FLOOR_REDIS = 'pg INSERT + BullMQ add (floor)';
const FLOOR_PG = 'pg INSERT + BullMQ add on Postgres (floor)';
const PLATFORM_REDIS = 'platform submit';
const PLATFORM_PG = 'platform submit, QUEUE_BACKEND=postgres';

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** The process serving it, whose CPU time per request is measured. */
  pid: number;
  /** Run once the target is measured (the Postgres floor's jobs leave the table the platform's share). */
  after?: () => Promise<void>;
  /** The platform's /metrics: its event-loop delay over the paced run (prom-client resets it on each scrape). */
  metricsUrl?: string;
}

interface Figures {
  maxRps: number;
  /** The paced rate asked for: half of maxRps. */
  rate: number;
  halfRateRps: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU time the serving process spent per request at the max rate (ms): what a shared machine's noise moves least. */
  cpuMs: number;
  errors: number;
  /** The serving process's event-loop delay over the paced run, p99 and max (ms), where it reports it. */
  loop?: { p99: number; max: number };
}

/** prom-client samples the event loop every 10 ms (eventLoopMonitoringPrecision): its figures include those 10 ms. */
const LOOP_RESOLUTION_S = 0.01;

/** The event-loop delay since the last scrape (which this one resets), p99 and max in ms; undefined if not reported. */
async function loopDelay(metricsUrl: string): Promise<{ p99: number; max: number } | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  const read = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`media_nodejs_eventloop_lag_${name}_seconds `));
    const seconds = line ? Number(line.split(' ')[1]) : NaN;
    return Math.round(Math.max(0, seconds - LOOP_RESOLUTION_S) * 10000) / 10;
  };
  const [p99, max] = [read('p99'), read('max')];
  return Number.isFinite(p99) && Number.isFinite(max) ? { p99, max } : undefined;
}

function start(script: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return fork(script, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  });
}

async function cannon(target: Target, opts: { duration: number }): Promise<autocannon.Result> {
  return autocannon({
    url: target.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: BODY,
    connections: CONNECTIONS,
    duration: opts.duration,
  });
}

/**
 * The most a target answers (autocannon, CONNECTIONS clients each sending its next request on the last answer), then
 * its latency at half that rate, requests sent evenly paced (one every 1/rate s; autocannon's own fixed rate sends
 * them in bursts, each connection's share at once every tick) and timed from when each was due.
 */
async function measure(target: Target): Promise<Figures> {
  await cannon(target, { duration: 1 }); // warm-up: JIT, pools, connections
  const cpuBefore = processUsage(target.pid).cpuSeconds;
  const max = await cannon(target, { duration: DURATION });
  const cpuMs = ((processUsage(target.pid).cpuSeconds - cpuBefore) * 1000) / Math.max(1, max.requests.total);
  const rate = Math.max(1, Math.floor(max.requests.average / 2));
  const request = { url: target.url, headers: target.headers, body: BODY };
  await paced(request, rate, 1, PACED_SOCKETS); // warm-up of the paced sockets
  if (target.metricsUrl) await loopDelay(target.metricsUrl);
  const half = await paced(request, rate, DURATION, PACED_SOCKETS);
  const loop = target.metricsUrl ? await loopDelay(target.metricsUrl) : undefined;
  return {
    maxRps: Math.round(max.requests.average),
    rate,
    loop,
    halfRateRps: half.rps,
    p50: half.p50,
    p99: half.p99,
    max: half.max,
    cpuMs: Math.round(cpuMs * 1000) / 1000,
    errors: max.non2xx + max.errors + half.errors,
  };
}

async function sql(db: string, statement: string): Promise<void> {
  const client = new Client({ connectionString: `${PG}/${db}` });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function resetDatabases(): Promise<void> {
  for (const db of [DB, DB_PG]) await sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
}

function ratio(a: Figures | undefined, b: Figures | undefined): string {
  return a && b ? (a.maxRps / b.maxRps).toFixed(2) : 'n/a';
}

async function main(): Promise<void> {
  const backends = benchBackends();
  await resetDatabases();
  const dist = join(__dirname, '..');
  const prefix = `bench${process.pid}`;
  const children: ChildProcess[] = [];
  const results: Record<string, Figures> = {};
  let sameRate: Awaited<ReturnType<typeof paced>> | undefined;
  const platformEnv = (port: string, redisPrefix: string, rateLimit: string, db: string, backend: string) => ({
    APP_ROLE: 'api',
    PORT: port,
    HOST: '127.0.0.1',
    DATABASE_URL: `${PG}/${db}`,
    REDIS_URL: REDIS,
    REDIS_PREFIX: redisPrefix,
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    RATE_LIMIT_PER_MINUTE: rateLimit,
    QUEUE_BACKEND: backend,
  });
  try {
    const token = signToken(SECRET, { sub: 'bench' });
    /** Starts a server and waits for it to answer at `ready`; its pid. */
    const serve = async (script: string, args: string[], ready: string, env?: Record<string, string>) => {
      const child = start(script, args, env);
      children.push(child);
      await waitForHttp(ready);
      return child.pid!;
    };
    const floors = join(__dirname, 'floor-servers.js');
    const platformMain = join(dist, 'src', 'main.js');
    const bare = await serve(floors, ['bare', '3902', '', '', ''], 'http://127.0.0.1:3902/');
    const targets: Target[] = [
      { name: 'bare Fastify (floor)', url: 'http://127.0.0.1:3902/submit', headers: {}, pid: bare },
    ];
    if (backends.includes('redis')) {
      // The platform first: its boot creates the database and applies the migrations the raw floor inserts into.
      const platform = await serve(
        platformMain,
        [],
        'http://127.0.0.1:3901/health/live',
        platformEnv('3901', prefix, '0', DB, 'redis'),
      );
      // The same, counting every request against a per-user limit in Redis (set too high to refuse any): its cost.
      const limited = await serve(
        platformMain,
        [],
        'http://127.0.0.1:3904/health/live',
        platformEnv('3904', `${prefix}rl`, '1000000', DB, 'redis'),
      );
      const raw = await serve(floors, ['raw', '3903', `${PG}/${DB}`, REDIS, `${prefix}raw`], 'http://127.0.0.1:3903/');
      targets.push(
        { name: FLOOR_REDIS, url: 'http://127.0.0.1:3903/submit', headers: {}, pid: raw },
        {
          name: PLATFORM_REDIS,
          url: 'http://127.0.0.1:3901/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
          pid: platform,
          metricsUrl: 'http://127.0.0.1:3901/metrics',
        },
        {
          name: 'platform submit, rate limiting on',
          url: 'http://127.0.0.1:3904/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
          pid: limited,
        },
      );
    }
    if (backends.includes('postgres')) {
      // Its own database: its boot creates it, migrates it and BullMQ's schema, where the floor's queue lives too.
      const platform = await serve(
        platformMain,
        [],
        'http://127.0.0.1:3905/health/live',
        platformEnv('3905', `${prefix}pg`, '0', DB_PG, 'postgres'),
      );
      const raw = await serve(
        floors,
        ['pgraw', '3906', `${PG}/${DB_PG}`, '', PG_FLOOR_QUEUE],
        'http://127.0.0.1:3906/',
      );
      targets.push(
        {
          name: FLOOR_PG,
          url: 'http://127.0.0.1:3906/submit',
          headers: {},
          pid: raw,
          // Its jobs leave the one job table the platform then adds to (Redis keeps each prefix's apart).
          after: () => sql(DB_PG, `DELETE FROM bullmq.job WHERE queue = '${PG_FLOOR_QUEUE}'`),
        },
        {
          name: PLATFORM_PG,
          url: 'http://127.0.0.1:3905/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
          pid: platform,
        },
      );
    }
    const only = process.env.BENCH_ONLY; // e.g. "platform" while tuning
    for (const target of targets.filter((x) => !only || x.name.includes(only))) {
      process.stderr.write(`measuring ${target.name}…\n`);
      results[target.name] = await measure(target);
      await target.after?.();
    }
    // The raw floor once more, paced at the platform's rate: the two tails side by side at the same load.
    const raw = targets.find((x) => x.name === FLOOR_REDIS);
    const platformRate = results[PLATFORM_REDIS]?.rate;
    if (raw && platformRate && results[FLOOR_REDIS]) {
      process.stderr.write(`measuring ${FLOOR_REDIS} at the platform's half rate…\n`);
      sameRate = await paced({ url: raw.url, headers: raw.headers, body: BODY }, platformRate, DURATION, PACED_SOCKETS);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await sleep(500);
    await resetDatabases().catch(() => undefined);
    // The submitted jobs (no worker ran them) and the floor's jobs.
    for (const suffix of ['', 'raw', 'rl', 'pg']) await deleteRedisKeys(`${prefix}${suffix}`).catch(() => undefined);
  }

  if (process.env.BENCH_ONLY) {
    console.table(results);
    return;
  }
  const bareFloor = results['bare Fastify (floor)'];
  const rows = Object.entries(results).map(([name, f]) => ({
    target: name,
    'max req/s': f.maxRps,
    'req/s at half rate': f.halfRateRps,
    'p50 ms': f.p50,
    'p99 ms': f.p99,
    'max ms': f.max,
    'CPU ms / req': f.cpuMs,
    errors: f.errors,
  }));
  console.table(rows);
  console.log(
    `max rate with ${CONNECTIONS} connections; latency at half of each target's max rate, evenly paced over ${PACED_SOCKETS} kept-alive sockets, from each request's due time; ${DURATION} s per run`,
  );
  const platform = results[PLATFORM_REDIS];
  const rawFloor = results[FLOOR_REDIS];
  if (platform && rawFloor) {
    console.log(`platform / raw floor throughput: ${ratio(platform, rawFloor)} (target ≥ 0.5)`);
    console.log(`platform / bare Fastify throughput: ${ratio(platform, bareFloor)}`);
    console.log(
      `CPU per request of the serving process: platform ${platform.cpuMs} ms, raw floor ${rawFloor.cpuMs} ms (the rest of a request's CPU is Postgres's and Redis's)`,
    );
    console.log(
      `platform p99 at half rate, paced: ${platform.p99} ms (target < 10 ms); raw floor p99: ${rawFloor.p99} ms; bare Fastify p99: ${bareFloor?.p99} ms`,
    );
    if (sameRate) {
      console.log(
        `at the platform's half rate (${platform.rate}/s), p50 / p99: platform ${platform.p50} / ${platform.p99} ms, raw floor ${sameRate.p50} / ${sameRate.p99} ms`,
      );
    }
    if (platform.loop) {
      console.log(
        `the platform's event-loop delay over its paced run: p99 ${platform.loop.p99} ms, max ${platform.loop.max} ms (the rest of a request's tail is its waits on Postgres and Redis, and the machine's)`,
      );
    }
  }
  const platformPg = results[PLATFORM_PG];
  const rawFloorPg = results[FLOOR_PG];
  if (platformPg && rawFloorPg) {
    console.log(
      `QUEUE_BACKEND=postgres: platform / its raw floor (BullMQ on Postgres) throughput: ${ratio(platformPg, rawFloorPg)}`,
    );
    console.log(`QUEUE_BACKEND=postgres: platform / bare Fastify throughput: ${ratio(platformPg, bareFloor)}`);
    console.log(
      `QUEUE_BACKEND=postgres: platform p99 at half rate: ${platformPg.p99} ms; its raw floor p99: ${rawFloorPg.p99} ms`,
    );
    if (platform && rawFloor) {
      console.log(
        `Postgres / Redis: platform throughput ${ratio(platformPg, platform)}, raw floor throughput ${ratio(rawFloorPg, rawFloor)}`,
      );
    }
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
