/**
 * Growth: the reads a user makes, and the reconciler's scan, on a small and a large `tasks` table (10 k and 1 M rows
 * by default, BENCH_GROWTH_SIZES). Each size gets a database of its own, migrated by a platform boot, then filled by
 * COPY (not through the API) and VACUUM ANALYZEd, as a table that grew over months would be after autovacuum:
 * - 1,000 users; one of them, the measured user, has the same 5,000 tasks at every size (a heavy user: 250 pages of
 *   20), so what grows is everyone else's history, not the work of the measured requests;
 * - rows in creation order over 180 days, as the API appends them; finished ones mostly completed (90 %), some failed
 *   (7 %) and cancelled (3 %), with the columns a finished task has (output files, cost, provider, webhook URL);
 * - the unfinished tasks (queued, processing) are a fixed number (BENCH_GROWTH_UNFINISHED), all of the last ten
 *   minutes: how many wait depends on the backlog, not on how much history the table holds.
 * No read measured here joins another table (webhook deliveries are read by their own endpoints), so only `tasks` is
 * filled.
 * Then one API process per size, both running: each request goes to both in turn (sequential, one at a time), so the
 * two sizes are measured under the same load from whatever else shares the machine. The reconciler's scan is the
 * repository method the reconciler calls (`TasksRepository.findStale`), run from this process on each database.
 * Printed: p50/p99 of each read at each size and the ratio of the p99s (target ≤ 1.2).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { AddressInfo, createServer } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { Agent, request } from 'undici';
import { signToken } from '../src/auth/token';
import { AppConfig } from '../src/config/app-config';
import { CreditsRepository } from '../src/credits/credits.repository';
import { createDataSource } from '../src/database/data-source';
import { SqlClient } from '../src/database/sql-client';
import { TasksRepository } from '../src/tasks/tasks.repository';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, PG, stop, waitForHttp } from './support';

const SIZES = (process.env.BENCH_GROWTH_SIZES ?? '10000,1000000').split(',').map(Number);
const USERS = Number(process.env.BENCH_GROWTH_USERS ?? 1000);
const MEASURED_TASKS = Number(process.env.BENCH_GROWTH_USER_TASKS ?? 5000);
const UNFINISHED = Number(process.env.BENCH_GROWTH_UNFINISHED ?? 250);
/** Requests of each read at each size (after a warm-up of a tenth as many). */
const REQUESTS = Number(process.env.BENCH_GROWTH_REQUESTS ?? 500);
/** BENCH_GROWTH_REUSE=1: keep the databases at the end, and reuse one that already holds its size (rerunning after a migration: the boot applies it). */
const REUSE = process.env.BENCH_GROWTH_REUSE === '1';
const MEASURED_USER = 'growth-measured-user';
const DAY = 86_400_000;
const HISTORY = 180 * DAY;
const RECENT = 10 * 60_000;
/** The reconciler's scan: as reconciler.processor.ts calls it (RECONCILE_GRACE_MS default, BATCH). */
const RECONCILE_GRACE_MS = 15_000;
const RECONCILE_BATCH = 500;

/** A deterministic PRNG (mulberry32), so every run loads the same table. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES: { type: string; providers: string[]; seconds: number; cost: number; files: string | null }[] = [
  { type: 'image_generation', providers: ['openai', 'stability', 'fal'], seconds: 8, cost: 0.04, files: 'png' },
  { type: 'subtitle_generation', providers: ['openai'], seconds: 20, cost: 0.006, files: 'srt' },
  { type: 'audio_transcription', providers: ['assemblyai', 'openai'], seconds: 30, cost: 0.01, files: null },
  { type: 'video_generation', providers: ['runway'], seconds: 90, cost: 0.5, files: 'mp4' },
  { type: 'img2vid', providers: ['ffmpeg'], seconds: 25, cost: 0, files: 'mp4' },
  { type: 'image_edit', providers: ['image-local', 'openai'], seconds: 3, cost: 0.02, files: 'png' },
];
const COLUMNS = [
  'id',
  'user_id',
  'type',
  'status',
  'priority',
  'progress',
  'input',
  'output',
  'error',
  'provider',
  'attempts',
  'cost_amount',
  'cost_currency',
  'cached',
  'options',
  'webhook_url',
  'webhook_secret',
  'metadata',
  'event_seq',
  'created_at',
  'updated_at',
  'started_at',
  'completed_at',
];

/** A value in COPY's text format: \N for null, backslash, tab and newlines escaped. */
function field(value: string | number | boolean | null): string {
  if (value === null) return '\\N';
  return String(value).replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);
}

/** The measured user's rows are spread evenly through the table's history; everyone else's at random. */
function* taskRows(size: number, now: number): Generator<string> {
  const random = prng(size);
  const measuredEvery = size / MEASURED_TASKS;
  const historyRows = size - UNFINISHED;
  for (let i = 0; i < size; i++) {
    const recent = i >= historyRows;
    const createdAt = recent
      ? now - RECENT + ((i - historyRows) / UNFINISHED) * RECENT
      : now - HISTORY - RECENT + (i / historyRows) * HISTORY + random() * 1000;
    const measured = Math.floor(i / measuredEvery) !== Math.floor((i + 1) / measuredEvery) || measuredEvery <= 1;
    const user = measured ? MEASURED_USER : `user-${String(1 + Math.floor(random() * (USERS - 1))).padStart(4, '0')}`;
    const kind = TYPES[Math.floor(random() * TYPES.length)];
    const roll = random();
    const status = recent
      ? roll < 0.75
        ? 'queued'
        : 'processing'
      : roll < 0.9
        ? 'completed'
        : roll < 0.97
          ? 'failed'
          : 'cancelled';
    const id = randomUUID();
    const priority = roll * 10 < 0.5 ? 'high' : roll * 10 > 9.8 ? 'low' : 'medium';
    const ran = status !== 'queued' && status !== 'cancelled';
    const startedAt = ran ? createdAt + 200 + random() * 2000 : null;
    const completedAt =
      startedAt !== null && status !== 'processing' ? startedAt + kind.seconds * 1000 * (0.5 + random()) : null;
    const provider = ran ? kind.providers[Math.floor(random() * kind.providers.length)] : null;
    const output =
      status === 'completed'
        ? kind.files
          ? {
              files: [
                {
                  key: `tasks/${id}/output.${kind.files}`,
                  content_type: kind.files === 'png' ? 'image/png' : kind.files === 'mp4' ? 'video/mp4' : 'text/plain',
                  size: Math.floor(20_000 + random() * 2_000_000),
                  sha256: randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, ''),
                },
              ],
            }
          : { text: 'a transcript of the recording, as the provider returned it '.repeat(3) }
        : null;
    const error =
      status === 'failed' ? { code: 'provider_error', message: `${provider} answered 503`, retryable: true } : null;
    const hooked = random() < 0.3;
    const updatedAt = completedAt ?? startedAt ?? createdAt;
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    yield [
      id,
      user,
      kind.type,
      status,
      priority,
      status === 'completed' ? 1 : status === 'processing' ? 0.4 : 0,
      JSON.stringify({ prompt: `a lighthouse at dawn, seen from the cliffs, number ${i}`, size: '1024x1024' }),
      output && JSON.stringify(output),
      error && JSON.stringify(error),
      provider,
      ran ? 1 : 0,
      status === 'completed' ? (kind.cost * (0.5 + random())).toFixed(6) : null,
      status === 'completed' ? 'USD' : null,
      status === 'completed' && random() < 0.05,
      '{}',
      hooked ? `https://hooks.example.com/${user}/media` : null,
      hooked ? `whsec_${randomUUID()}` : null,
      null,
      status === 'queued' ? 1 : status === 'processing' ? 3 : 4,
      iso(createdAt),
      iso(updatedAt),
      iso(startedAt),
      iso(completedAt),
    ]
      .map(field)
      .join('\t');
  }
}

/** COPY of `size` task rows, then VACUUM ANALYZE; resolves to the seconds the COPY took. */
async function load(db: string, size: number): Promise<number> {
  return admin(async (c: Client) => {
    const began = Date.now();
    const lines = taskRows(size, Date.now());
    // Lines in chunks of 1,000: one stream write per row would spend the time in stream machinery.
    const chunks = Readable.from(
      (function* () {
        let chunk: string[] = [];
        for (const line of lines) {
          chunk.push(line);
          if (chunk.length === 1000) {
            yield chunk.join('\n') + '\n';
            chunk = [];
          }
        }
        if (chunk.length) yield chunk.join('\n') + '\n';
      })(),
    );
    await pipeline(chunks, c.query(copyFrom(`COPY tasks (${COLUMNS.join(', ')}) FROM STDIN`)));
    const seconds = (Date.now() - began) / 1000;
    await c.query('VACUUM ANALYZE tasks');
    return seconds;
  }, db);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Size {
  size: number;
  db: string;
  url: string;
  platform: ChildProcess;
  /** The measured user's task ids, and the cursor of page 5 of their list (the 6th page follows it). */
  ids: string[];
  deepCursor: string;
  repo: TasksRepository;
  closeRepo: () => Promise<void>;
}

interface Probe {
  name: string;
  run: (s: Size, i: number) => Promise<void>;
  /** Requests at each size, when not REQUESTS. */
  requests?: number;
}

const agent = new Agent({ connections: 4 });
const userToken = signToken(BENCH_JWT_SECRET, { sub: MEASURED_USER });
const adminToken = signToken(BENCH_JWT_SECRET, { sub: 'growth-admin', admin: true });

async function get(url: string, token = userToken): Promise<Record<string, unknown>> {
  const res = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
  const body = (await res.body.json()) as Record<string, unknown>;
  if (res.statusCode !== 200) throw new Error(`GET ${url} answered ${res.statusCode}: ${JSON.stringify(body)}`);
  return body;
}

const TASKS = '/api/v1/media/tasks';
const PROBES: Probe[] = [
  // The floor: a request through the same process that reads nothing, on the same machine at the same moment.
  { name: 'GET /health/live (floor, no query)', run: async (s) => void (await get(`${s.url}/health/live`)) },
  { name: 'GET /tasks/{id}', run: async (s, i) => void (await get(`${s.url}${TASKS}/${s.ids[i % s.ids.length]}`)) },
  { name: 'GET /tasks, first page', run: async (s) => void (await get(`${s.url}${TASKS}`)) },
  {
    name: 'GET /tasks, 6th page (cursor)',
    run: async (s) => void (await get(`${s.url}${TASKS}?cursor=${encodeURIComponent(s.deepCursor)}`)),
  },
  { name: 'GET /statistics (own)', run: async (s) => void (await get(`${s.url}/api/v1/media/statistics`)) },
  {
    // Every user's tasks: a pass over the whole table, seconds at a million rows, so fewer requests.
    name: 'GET /statistics?scope=all (admin)',
    run: async (s) => void (await get(`${s.url}/api/v1/media/statistics?scope=all`, adminToken)),
    requests: Math.max(10, Math.ceil(REQUESTS / 25)),
  },
  {
    name: "reconciler's scan (findStale)",
    run: async (s) => {
      const stale = await s.repo.findStale(RECONCILE_GRACE_MS, RECONCILE_BATCH);
      if (stale.length === 0) throw new Error('the reconciler found nothing to scan');
    },
  },
];

/** A port nothing listens on now (other benchmarks and tests may run on the same machine). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The number of tasks in `db`; null when there is no such database (or no table yet). */
async function rowsIn(db: string): Promise<number | null> {
  try {
    return await admin(
      (c) => c.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks`).then((r) => r.rows[0].n),
      db,
    );
  } catch {
    return null;
  }
}

async function prepare(size: number, index: number, prefix: string): Promise<Size> {
  const db = `media_bench_growth_${size}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // No provider is called (no task runs): live mode with no keys starts no sandbox, whose ports others may hold.
  const env = { APP_ROLE: 'api', PORT: String(port), REDIS_PREFIX: `${prefix}s${index}`, PROVIDERS_MODE: 'live' };
  const loaded = REUSE && (await rowsIn(db)) === size;
  if (!loaded) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  // Boot once to create and migrate the database.
  const boot = forkPlatform(db, env);
  await waitForHttp(`${url}/health/live`);
  await stop(boot);
  if (!loaded) {
    process.stderr.write(`loading ${size.toLocaleString('en')} tasks by COPY…\n`);
    const seconds = await load(db, size);
    process.stderr.write(`  COPY took ${seconds.toFixed(1)} s (then VACUUM ANALYZE)\n`);
  }
  const platform = forkPlatform(db, env);
  await waitForHttp(`${url}/health/live`);
  const ids = await admin(
    (c) =>
      c
        .query<{ id: string }>(`SELECT id FROM tasks WHERE user_id = $1 ORDER BY random()`, [MEASURED_USER])
        .then((r) => r.rows.map((row) => row.id)),
    db,
  );
  let cursor: string | undefined;
  for (let page = 1; page <= 5; page++) {
    const body = await get(`${url}${TASKS}${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    cursor = body.next_cursor as string;
  }
  const config = AppConfig.fromEnv({ DATABASE_URL: `${PG}/${db}` });
  const dataSource = await createDataSource(config.databaseUrl, 2).initialize();
  const sql = new SqlClient(config, dataSource);
  const repo = new TasksRepository(dataSource, sql, new CreditsRepository(config, sql, dataSource));
  const closeRepo = async () => {
    await sql.onApplicationShutdown();
    await dataSource.destroy();
  };
  return { size, db, url, platform, ids, deepCursor: cursor!, repo, closeRepo };
}

async function main(): Promise<void> {
  if (SIZES.length !== 2) throw new Error('BENCH_GROWTH_SIZES names two sizes: the small one, then the large one');
  const prefix = `benchgrowth${process.pid}`;
  const sizes: Size[] = [];
  try {
    for (const [i, size] of SIZES.entries()) sizes.push(await prepare(size, i, prefix));
    const rows: Record<string, string | number>[] = [];
    for (const probe of PROBES) {
      process.stderr.write(`${probe.name}…\n`);
      const samples: number[][] = sizes.map(() => []);
      const requests = probe.requests ?? REQUESTS;
      const warmup = Math.ceil(requests / 10);
      for (let i = 0; i < warmup + requests; i++) {
        // Alternating which size goes first, so neither always follows the other's work.
        const order = i % 2 ? [1, 0] : [0, 1];
        for (const k of order) {
          const began = performance.now();
          await probe.run(sizes[k], i);
          if (i >= warmup) samples[k].push(performance.now() - began);
        }
      }
      const stats = samples.map((s) => {
        const sorted = s.sort((a, b) => a - b);
        return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
      });
      const f = (ms: number) => ms.toFixed(1);
      rows.push({
        query: probe.name,
        [`p50 / p99 ms at ${SIZES[0].toLocaleString('en')}`]: `${f(stats[0].p50)} / ${f(stats[0].p99)}`,
        [`p50 / p99 ms at ${SIZES[1].toLocaleString('en')}`]: `${f(stats[1].p50)} / ${f(stats[1].p99)}`,
        'p99 ratio (target ≤ 1.2)': Math.round((stats[1].p99 / stats[0].p99) * 100) / 100,
      });
    }
    console.log(
      `\nGrowth: ${SIZES.map((s) => s.toLocaleString('en')).join(' vs ')} task rows, ${USERS} users, the measured ` +
        `user's ${MEASURED_TASKS} tasks; ${REQUESTS} sequential requests of each read at each size (scope=all: ` +
        `${PROBES.find((p) => p.requests)?.requests}), interleaved`,
    );
    console.table(rows);
  } finally {
    for (const s of sizes) {
      await stop(s.platform);
      await s.closeRepo();
      if (!REUSE) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${s.db} WITH (FORCE)`));
    }
    await agent.close();
    await deleteRedisKeys(prefix);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
