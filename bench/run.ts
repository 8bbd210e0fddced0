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
import { benchBackends, deleteRedisKeys, sleep, waitForHttp } from './support';

const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DB = 'media_bench';
/** The database of the platform with QUEUE_BACKEND=postgres (its tasks and its BullMQ schema) and of its floor. */
const DB_PG = 'media_bench_pg';
/** The queue the Postgres floor adds to, beside the platform's own in the same schema. */
const PG_FLOOR_QUEUE = 'floor';
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** Clients sending at a fixed rate: a service at half load sees few requests in flight at once. */
const HALF_RATE_CONNECTIONS = Number(process.env.BENCH_HALF_RATE_CONNECTIONS ?? 8);
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
  /** Run once the target is measured (the Postgres floor's jobs leave the table the platform's share). */
  after?: () => Promise<void>;
}

interface Figures {
  maxRps: number;
  halfRateRps: number;
  p50: number;
  p99: number;
  errors: number;
}

function start(script: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return fork(script, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  });
}

async function cannon(
  target: Target,
  opts: { overallRate?: number; duration: number; connections?: number },
): Promise<autocannon.Result> {
  return autocannon({
    url: target.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    body: BODY,
    connections: opts.connections ?? CONNECTIONS,
    duration: opts.duration,
    overallRate: opts.overallRate,
  });
}

async function measure(target: Target): Promise<Figures> {
  await cannon(target, { duration: 1 }); // warm-up: JIT, pools, connections
  const max = await cannon(target, { duration: DURATION });
  const half = await cannon(target, {
    duration: DURATION,
    overallRate: Math.max(1, Math.floor(max.requests.average / 2)),
    connections: HALF_RATE_CONNECTIONS,
  });
  return {
    maxRps: Math.round(max.requests.average),
    halfRateRps: Math.round(half.requests.average),
    p50: half.latency.p50,
    p99: half.latency.p99,
    errors: max.non2xx + max.errors + half.non2xx + half.errors,
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
    const bare = start(join(__dirname, 'floor-servers.js'), ['bare', '3902', '', '', '']);
    children.push(bare);
    await waitForHttp('http://127.0.0.1:3902/');
    const targets: Target[] = [{ name: 'bare Fastify (floor)', url: 'http://127.0.0.1:3902/submit', headers: {} }];
    if (backends.includes('redis')) {
      // The platform first: its boot creates the database and applies the migrations the raw floor inserts into.
      children.push(start(join(dist, 'src', 'main.js'), [], platformEnv('3901', prefix, '0', DB, 'redis')));
      await waitForHttp('http://127.0.0.1:3901/health/live');
      // The same, counting every request against a per-user limit in Redis (set too high to refuse any): its cost.
      children.push(
        start(join(dist, 'src', 'main.js'), [], platformEnv('3904', `${prefix}rl`, '1000000', DB, 'redis')),
      );
      await waitForHttp('http://127.0.0.1:3904/health/live');
      children.push(start(join(__dirname, 'floor-servers.js'), ['raw', '3903', `${PG}/${DB}`, REDIS, `${prefix}raw`]));
      await waitForHttp('http://127.0.0.1:3903/');
      targets.push(
        { name: FLOOR_REDIS, url: 'http://127.0.0.1:3903/submit', headers: {} },
        {
          name: PLATFORM_REDIS,
          url: 'http://127.0.0.1:3901/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
        },
        {
          name: 'platform submit, rate limiting on',
          url: 'http://127.0.0.1:3904/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
        },
      );
    }
    if (backends.includes('postgres')) {
      // Its own database: its boot creates it, migrates it and BullMQ's schema, where the floor's queue lives too.
      children.push(
        start(join(dist, 'src', 'main.js'), [], platformEnv('3905', `${prefix}pg`, '0', DB_PG, 'postgres')),
      );
      await waitForHttp('http://127.0.0.1:3905/health/live');
      children.push(
        start(join(__dirname, 'floor-servers.js'), ['pgraw', '3906', `${PG}/${DB_PG}`, '', PG_FLOOR_QUEUE]),
      );
      await waitForHttp('http://127.0.0.1:3906/');
      targets.push(
        {
          name: FLOOR_PG,
          url: 'http://127.0.0.1:3906/submit',
          headers: {},
          // Its jobs leave the one job table the platform then adds to (Redis keeps each prefix's apart).
          after: () => sql(DB_PG, `DELETE FROM bullmq.job WHERE queue = '${PG_FLOOR_QUEUE}'`),
        },
        {
          name: PLATFORM_PG,
          url: 'http://127.0.0.1:3905/api/v1/media/subtitles/generate',
          headers: { authorization: `Bearer ${token}` },
        },
      );
    }
    const only = process.env.BENCH_ONLY; // e.g. "platform" while tuning
    for (const target of targets.filter((x) => !only || x.name.includes(only))) {
      process.stderr.write(`measuring ${target.name}…\n`);
      results[target.name] = await measure(target);
      await target.after?.();
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
    errors: f.errors,
  }));
  console.table(rows);
  console.log(
    `max rate with ${CONNECTIONS} connections; latency at half of each target's max rate with ${HALF_RATE_CONNECTIONS}; ${DURATION} s per run`,
  );
  const platform = results[PLATFORM_REDIS];
  const rawFloor = results[FLOOR_REDIS];
  if (platform && rawFloor) {
    console.log(`platform / raw floor throughput: ${ratio(platform, rawFloor)} (target ≥ 0.5)`);
    console.log(`platform / bare Fastify throughput: ${ratio(platform, bareFloor)}`);
    console.log(`platform p99 at half rate: ${platform.p99} ms (target < 10 ms); raw floor p99: ${rawFloor.p99} ms`);
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
