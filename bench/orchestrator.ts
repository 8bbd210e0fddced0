/**
 * The orchestrator's submit: `POST /video/img2vid` with an API key, a `webhook_url` and 100 images, answered 202 at
 * once (the sources claimed about 100 ms). One API process (APP_ROLE=api, so only the submit path is measured and
 * the thousands of jobs accepted are not run) in sandbox mode. Two loads: one client submitting one job after
 * another, and BENCH_ORCHESTRATOR_CONNECTIONS (8) clients at once. The floor is the same process's `/health/live`.
 */
import autocannon from 'autocannon';
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, stop, waitForHttp } from './support';

const DB = 'media_bench_orchestrator';
const PORT = 3971;
const SANDBOX_PORT = 4640;
const API = `http://127.0.0.1:${PORT}`;
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = Number(process.env.BENCH_ORCHESTRATOR_CONNECTIONS ?? 8);
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-orchestrator-'));

const BODY = JSON.stringify({
  images: Array.from({ length: 100 }, (_, i) => ({
    id: `scene-${i}`,
    image_url: `https://example.com/frames/${i}.jpg`,
    duracao: 3,
  })),
  webhook_url: 'https://example.com/n8n/webhook',
  id_roteiro: 'bench',
});

interface Figures {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
}

async function load(path: string, body: string | undefined, headers: Record<string, string>, connections: number) {
  const result = await autocannon({
    url: `${API}${path}`,
    method: body ? 'POST' : 'GET',
    headers: body ? { 'content-type': 'application/json', ...headers } : headers,
    body,
    connections,
    duration: DURATION,
  });
  return {
    requests: result.requests.total,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx + result.errors,
  } satisfies Figures;
}

async function main(): Promise<void> {
  const prefix = `benchorch${process.pid}`;
  const children: ChildProcess[] = [];
  const results: Record<string, Figures> = {};
  try {
    children.push(
      forkPlatform(DB, {
        APP_ROLE: 'api',
        PORT: String(PORT),
        REDIS_PREFIX: prefix,
        PROVIDERS_MODE: 'sandbox',
        SANDBOX_PORT: String(SANDBOX_PORT),
        SANDBOX_RUNPOD_EXECUTION: 'simulated',
        FFMPEG_PATH: '/nonexistent/ffmpeg',
        WEBHOOK_SECRET: 'bench-webhook-secret-0123456789',
        NODE_ENV: 'development',
        STORAGE_DIR: join(SCRATCH, 'outputs'),
        CACHE_DIR: join(SCRATCH, 'cache'),
      }),
    );
    await waitForHttp(`${API}/health/live`);
    const root = signToken(BENCH_JWT_SECRET, { sub: 'bench-admin', admin: true, ttl: '1h' });
    const created = await fetch(`${API}/api/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${root}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner: 'n8n', name: 'bench' }),
    });
    if (created.status !== 201) throw new Error(`api key: ${created.status} ${await created.text()}`);
    const key = ((await created.json()) as { key: string }).key;
    const keyed = { 'x-api-key': key };

    // Warm-up: JIT, pools, connections, the key's cached lookup.
    await load('/video/img2vid', BODY, keyed, 2);
    results['floor: GET /health/live, 1 client'] = await load('/health/live', undefined, {}, 1);
    results['POST /video/img2vid (100 images, webhook_url), 1 client'] = await load('/video/img2vid', BODY, keyed, 1);
    results[`POST /video/img2vid (100 images, webhook_url), ${CONNECTIONS} clients`] = await load(
      '/video/img2vid',
      BODY,
      keyed,
      CONNECTIONS,
    );
  } finally {
    for (const child of children.reverse()) await stop(child);
    await deleteRedisKeys(prefix);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
    rmSync(SCRATCH, { recursive: true, force: true });
  }
  console.table(
    Object.entries(results).map(([target, f]) => ({
      target,
      requests: f.requests,
      'req/s': f.rps,
      'p50 ms': f.p50,
      'p99 ms': f.p99,
      'max ms': f.max,
      'not 2xx': f.non2xx,
    })),
  );
  console.log(`${DURATION} s per run, API role only (the jobs accepted wait in the queue)`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
