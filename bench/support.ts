/** Helpers shared by the benchmarks. */
import { ChildProcess, execFileSync, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { AppConfig } from '../src/config/app-config';
import type { SqlClient } from '../src/database/sql-client';
import { PostgresQueueBackend } from '../src/queue/postgres-queue-backend';

export const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
export const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Where a benchmark's queues live: the platform's QUEUE_BACKEND, and the store of the raw BullMQ floors. */
export type Backend = 'redis' | 'postgres';

/** The backends to measure, from BENCH_BACKENDS (a comma-separated list; both by default, Redis first). */
export function benchBackends(): Backend[] {
  const names = (process.env.BENCH_BACKENDS ?? 'redis,postgres')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of names) {
    if (name !== 'redis' && name !== 'postgres') throw new Error(`BENCH_BACKENDS: unknown backend "${name}"`);
  }
  if (!names.length) throw new Error('BENCH_BACKENDS names no backend');
  return [...new Set(names)] as Backend[];
}

/**
 * BullMQ on Postgres exactly as a platform process builds it (`PostgresQueueBackend`: BullMQ's
 * `createPostgresBackend` on one pool of DATABASE_POOL_SIZE + 3 connections, `search_path` set to the `bullmq`
 * schema, the same pool and worker options), on the database of `databaseUrl`. The schema must exist (a platform
 * booted on that database migrates it). Its queues and pool close with `onApplicationShutdown()`.
 */
export function postgresQueues(databaseUrl: string, poolSize = 10): PostgresQueueBackend {
  const config = AppConfig.fromEnv({
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: String(poolSize),
    QUEUE_BACKEND: 'postgres',
  });
  // The SQL client serves only `lockHolder`, which no benchmark asks.
  return new PostgresQueueBackend(config, undefined as unknown as SqlClient);
}

/** Runs `fn` with a client of database `db` on the benchmark's Postgres. */
export async function admin<T>(fn: (c: Client) => Promise<T>, db = 'postgres'): Promise<T> {
  const client = new Client({ connectionString: `${PG}/${db}` });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** SIGTERM, and wait (bounded) for the child to exit. */
export async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10000)]);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once `url` answers at all (a child process has finished booting). */
export async function waitForHttp(url: string, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${url} never answered`);
}

/** The secret the benchmarks sign their tokens with. */
export const BENCH_JWT_SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';

/**
 * One platform process (the built `dist/src/main.js`) on database `db`, logging warnings only; `env` adds to or
 * overrides the defaults. BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to its `node`.
 */
export function forkPlatform(db: string, env: Record<string, string>): ChildProcess {
  return fork(join(__dirname, '..', 'src', 'main.js'), [], {
    env: {
      ...process.env,
      DATABASE_URL: `${PG}/${db}`,
      REDIS_URL: REDIS,
      JWT_SECRET: BENCH_JWT_SECRET,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      RATE_LIMIT_PER_MINUTE: '0', // one user submits thousands of tasks
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [],
  });
}

/** Deletes every Redis key of a deployment prefix (BullMQ's `{prefix}:…` and the platform's `prefix:…`). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS);
  try {
    for (const pattern of [`{${prefix}}*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/** Resident memory (MiB) and CPU time used so far (s) of a live process, read from /proc (Linux). */
export function processUsage(pid: number): { rssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name): user and system time, in clock ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMb: Math.round(rssKb / 1024), cpuSeconds: ticks / CLOCK_TICKS };
}

/**
 * CPU time (s) of the machine's parties, read from /proc (Linux): `machine` is every core's busy time; the others
 * are the processes of that command name (`postgres`, `redis-server`), with the time of the children they reaped
 * (a Postgres backend that ended during a run still counts, through the postmaster), and `pid`s named by the caller.
 */
export function cpuParties(pids: Record<string, number> = {}): Record<string, number> {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const jiffies = fields.map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are the time no core worked.
  const busy = jiffies.slice(0, 8).reduce((a, b) => a + b, 0) - jiffies[3] - jiffies[4];
  const byName: Record<string, number> = { machine: busy / CLOCK_TICKS, postgres: 0, 'redis-server': 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!(name in byName) || name === 'machine') continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byName[name] += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
  }
  for (const [label, pid] of Object.entries(pids)) byName[label] = processUsage(pid).cpuSeconds;
  return byName;
}

/** What each party of `cpuParties` spent between two readings, in ms per unit of work done meanwhile. */
export function cpuPerUnit(
  before: Record<string, number>,
  after: Record<string, number>,
  units: number,
): Record<string, number> {
  return Object.fromEntries(
    Object.keys(after).map((k) => [k, Math.round(((after[k] - (before[k] ?? 0)) * 1000 * 100) / units) / 100]),
  );
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** One webhook the receiver read: its event, when it arrived, and the event's own timestamp. */
export interface ReceiverHit {
  event: string;
  at: number;
  eventAt: number;
}

/** The webhook receiver (bench/webhook-receiver.ts), in a process of its own so the load never delays it. */
export class Receiver {
  private constructor(
    private readonly child: ChildProcess,
    /** The same receiver on three loopback hosts (127.0.0.1, .2 and .3). */
    readonly urls: string[],
  ) {}

  /** Its URL on 127.0.0.1. */
  get url(): string {
    return this.urls[0];
  }

  static async start(): Promise<Receiver> {
    const child = fork(join(__dirname, 'webhook-receiver.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const { urls } = await new Promise<{ urls: string[] }>((resolve) => child.once('message', resolve));
    return new Receiver(child, urls);
  }

  private ask<T>(msg: object): Promise<T> {
    return new Promise<T>((resolve) => {
      this.child.once('message', (answer) => resolve(answer as T));
      this.child.send(msg);
    });
  }

  /** Every hit since the last take. */
  async take(): Promise<ReceiverHit[]> {
    return (await this.ask<{ hits: ReceiverHit[] }>({ take: true })).hits;
  }

  async count(): Promise<number> {
    return (await this.ask<{ count: number }>({ count: true })).count;
  }

  stop(): void {
    this.child.send({ stop: true });
  }
}
