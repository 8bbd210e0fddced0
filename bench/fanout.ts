/**
 * The sources' scenario: four img2vid jobs of 100 images each, submitted together, at a RunPod endpoint capped at 3
 * jobs (RUNPOD_MAX_CONCURRENCY), through two platform processes (API + worker, and a second worker) in sandbox mode,
 * the RunPod emulator simulating BENCH_FANOUT_CLIP_MS of GPU work per clip and calling the platform back when a job
 * ends (PUBLIC_URL), polled at the real periods otherwise. Measured twice in the same run: with
 * fan-out (each job split into 3 parts) and without (FANOUT_PART_MIN_IMAGES=0, one RunPod job per request, as a
 * router without fan-out would do). The floor is the ideal: all clips' work spread over the 3 workers.
 */
import { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { signToken } from '../src/auth/token';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, sleep, stop, waitForHttp } from './support';

const DB = 'media_bench_fanout';
const CLIP_MS = Number(process.env.BENCH_FANOUT_CLIP_MS ?? 60);
const JOBS = 4;
const IMAGES = 100;
const CAP = 3;
const PORT = 3961;
const SANDBOX_PORT = 4620;
const API = `http://127.0.0.1:${PORT}`;
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-fanout-'));

interface Outcome {
  acceptMs: number;
  makespanMs: number;
  endsS: number[];
  maxOutstanding: number;
  submissions: number;
}

async function scenario(fanout: boolean, prefix: string): Promise<Outcome> {
  const env = {
    REDIS_PREFIX: prefix,
    PROVIDERS_MODE: 'sandbox',
    SANDBOX_PORT: String(SANDBOX_PORT),
    SANDBOX_RUNPOD_EXECUTION: 'simulated',
    SANDBOX_CLIP_MS: String(CLIP_MS),
    SANDBOX_ASYNC_STEPS: '0',
    // RunPod is the only img2vid provider here, as in the sources.
    FFMPEG_PATH: '/nonexistent/ffmpeg',
    RUNPOD_MAX_CONCURRENCY: String(CAP),
    FANOUT_PART_MIN_IMAGES: fanout ? '10' : '0',
    // RunPod calls the platform back when a job ends (PUBLIC_URL), so the real poll periods (2–5 s) stay.
    PUBLIC_URL: API,
    WORKER_CONCURRENCY: '4',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    NODE_ENV: 'development',
    STORAGE_DIR: join(SCRATCH, 'outputs'),
    CACHE_DIR: join(SCRATCH, 'cache'),
  };
  const children: ChildProcess[] = [];
  try {
    children.push(forkPlatform(DB, { ...env, APP_ROLE: 'all', PORT: String(PORT) }));
    await waitForHttp(`${API}/health/live`);
    // The second process finds the emulators' ports taken and uses the first one's.
    children.push(forkPlatform(DB, { ...env, APP_ROLE: 'worker', PORT: String(PORT + 1) }));
    await sleep(3000);
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const adminToken = signToken(BENCH_JWT_SECRET, { sub: 'bench-admin', admin: true, ttl: '1h' });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const started = performance.now();
    const ids: string[] = [];
    for (let k = 0; k < JOBS; k++) {
      const images = Array.from({ length: IMAGES }, (_, i) => ({
        id: `j${k}-${i}`,
        image_url: 'http://127.0.0.1:9/frame.png',
        duracao: 1,
      }));
      const res = await fetch(`${API}/video/img2vid/async`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ images, cache: 'bypass' }),
      });
      if (res.status !== 202) throw new Error(`img2vid answered ${res.status}: ${await res.text()}`);
      ids.push(((await res.json()) as { jobId: string }).jobId);
    }
    const acceptMs = performance.now() - started;
    const ends: number[] = new Array<number>(JOBS).fill(0);
    while (ends.some((e) => e === 0)) {
      await sleep(100);
      for (const [k, id] of ids.entries()) {
        if (ends[k]) continue;
        const res = await fetch(`${API}/jobs/${id}`, { headers });
        const job = (await res.json()) as { status: string };
        if (job.status === 'FAILED' || job.status === 'CANCELLED') throw new Error(`job ${k} ended ${job.status}`);
        if (job.status === 'COMPLETED') ends[k] = performance.now() - started;
      }
      if (performance.now() - started > 300_000) throw new Error('the scenario did not finish in 5 minutes');
    }
    const state = (await (
      await fetch(`${API}/api/v1/sandbox`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).json()) as { providers: { runpod: { max_outstanding: number; submissions: number } } };
    return {
      acceptMs,
      makespanMs: Math.max(...ends),
      endsS: ends.map((e) => Math.round(e / 100) / 10),
      maxOutstanding: state.providers.runpod.max_outstanding,
      submissions: state.providers.runpod.submissions,
    };
  } finally {
    for (const child of children.reverse()) await stop(child);
    await deleteRedisKeys(prefix);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  }
}

async function main(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const ideal = (JOBS * IMAGES * CLIP_MS) / CAP;
  const rows: Record<string, string | number>[] = [
    { target: `ideal: ${JOBS * IMAGES} clips over ${CAP} workers (floor)`, 'makespan s': ideal / 1000, ratio: 1 },
  ];
  try {
    for (const fanout of [true, false]) {
      process.stderr.write(`fan-out ${fanout ? 'on' : 'off'}…\n`);
      const o = await scenario(fanout, `benchfan${process.pid}${fanout ? 'on' : 'off'}`);
      rows.push({
        target: fanout ? 'platform, fan-out on' : 'platform, fan-out off (one RunPod job per request)',
        'makespan s': Math.round(o.makespanMs / 100) / 10,
        ratio: Math.round((ideal / o.makespanMs) * 100) / 100,
        'jobs end at s': o.endsS.join(' · '),
        'RunPod jobs': o.submissions,
        'most out at once': o.maxOutstanding,
        'all 4 accepted in ms': Math.round(o.acceptMs),
      });
    }
  } finally {
    rmSync(SCRATCH, { recursive: true, force: true });
  }
  console.table(rows);
  console.log(`${JOBS} jobs × ${IMAGES} images, ${CLIP_MS} ms of simulated GPU work per clip, RunPod cap ${CAP}`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
