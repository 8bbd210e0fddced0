/**
 * `npm run bench`: submit throughput and latency of POST /api/v1/media/subtitles/generate (API role only, workers
 * off, so only the submit path is measured), next to two floors measured in the same run: a bare Fastify handler
 * and a Fastify handler doing a raw `pg` INSERT + BullMQ `add`. Absolute numbers drift on shared machines; the
 * ratios are the result.
 */
import autocannon from 'autocannon';
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { signToken } from '../src/auth/token';
import { deleteRedisKeys, sleep, waitForHttp } from './support';

const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DB = 'media_bench';
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
/** Clients sending at a fixed rate: a service at half load sees few requests in flight at once. */
const HALF_RATE_CONNECTIONS = Number(process.env.BENCH_HALF_RATE_CONNECTIONS ?? 8);
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const BODY = JSON.stringify({ text: 'The quick brown fox jumps over the lazy dog. It was not amused.', format: 'srt' });

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
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

async function resetDatabase(): Promise<void> {
  const admin = new Client({ connectionString: `${PG}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();
}

async function main(): Promise<void> {
  await resetDatabase();
  const dist = join(__dirname, '..');
  const prefix = `bench${process.pid}`;
  const children: ChildProcess[] = [];
  const results: Record<string, Figures> = {};
  try {
    // The platform first: its boot creates the database and applies the migrations the raw floor inserts into.
    const platform = start(join(dist, 'src', 'main.js'), [], {
      APP_ROLE: 'api',
      PORT: '3901',
      HOST: '127.0.0.1',
      DATABASE_URL: `${PG}/${DB}`,
      REDIS_URL: REDIS,
      REDIS_PREFIX: prefix,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    children.push(platform);
    await waitForHttp('http://127.0.0.1:3901/health/live');
    // The same, counting every request against a per-user limit in Redis (set too high to refuse any): its cost.
    const limited = start(join(dist, 'src', 'main.js'), [], {
      APP_ROLE: 'api',
      PORT: '3904',
      HOST: '127.0.0.1',
      DATABASE_URL: `${PG}/${DB}`,
      REDIS_URL: REDIS,
      REDIS_PREFIX: `${prefix}rl`,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    children.push(limited);
    await waitForHttp('http://127.0.0.1:3904/health/live');
    const bare = start(join(__dirname, 'floor-servers.js'), ['bare', '3902', '', '', '']);
    const raw = start(join(__dirname, 'floor-servers.js'), ['raw', '3903', `${PG}/${DB}`, REDIS, `${prefix}raw`]);
    children.push(bare, raw);
    await Promise.all([waitForHttp('http://127.0.0.1:3902/'), waitForHttp('http://127.0.0.1:3903/')]);

    const token = signToken(SECRET, { sub: 'bench', ttl: '1h' });
    const targets: Target[] = [
      { name: 'bare Fastify (floor)', url: 'http://127.0.0.1:3902/submit', headers: {} },
      { name: 'pg INSERT + BullMQ add (floor)', url: 'http://127.0.0.1:3903/submit', headers: {} },
      {
        name: 'platform submit',
        url: 'http://127.0.0.1:3901/api/v1/media/subtitles/generate',
        headers: { authorization: `Bearer ${token}` },
      },
      {
        name: 'platform submit, rate limiting on',
        url: 'http://127.0.0.1:3904/api/v1/media/subtitles/generate',
        headers: { authorization: `Bearer ${token}` },
      },
    ];
    const only = process.env.BENCH_ONLY; // e.g. "platform" while tuning
    for (const target of targets.filter((x) => !only || x.name.includes(only))) {
      process.stderr.write(`measuring ${target.name}…\n`);
      results[target.name] = await measure(target);
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await sleep(500);
    await resetDatabase().catch(() => undefined);
    // The submitted jobs (no worker ran them) and the floor's jobs.
    for (const suffix of ['', 'raw', 'rl']) await deleteRedisKeys(`${prefix}${suffix}`).catch(() => undefined);
  }

  if (process.env.BENCH_ONLY) {
    console.table(results);
    return;
  }
  const platform = results['platform submit'];
  const rawFloor = results['pg INSERT + BullMQ add (floor)'];
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
  console.log(`platform / raw floor throughput: ${(platform.maxRps / rawFloor.maxRps).toFixed(2)} (target ≥ 0.5)`);
  console.log(`platform / bare Fastify throughput: ${(platform.maxRps / bareFloor.maxRps).toFixed(2)}`);
  console.log(`platform p99 at half rate: ${platform.p99} ms (target < 10 ms); raw floor p99: ${rawFloor.p99} ms`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
