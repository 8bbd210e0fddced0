/**
 * Memory of the platform's processes, each beside its floor measured in the same run:
 *  - each role at rest: the resident memory of an APP_ROLE=api, worker and all process once booted (`npm start`'s
 *    defaults: sandbox providers), beside a bare worker (dist/bench/memory-floor.js: Fastify listening, a `pg` pool and
 *    a BullMQ Worker, nothing of the platform);
 *  - a worker draining a backlog: BENCH_MEMORY_DRAIN_TASKS (5,000) image tasks submitted through an API process with
 *    no worker running, then drained by one APP_ROLE=worker process at WORKER_CONCURRENCY 100 and at its default; its
 *    RSS is read from /proc every 50 ms. The floor drains as many no-op jobs at the same concurrency;
 *  - big files: addaudio tasks on a video of BENCH_MEMORY_MB (400; 0 skips this part) MiB, served from loopback,
 *    through one platform process (APP_ROLE=all). Each task downloads the video and the audio, probes them, muxes
 *    them (video copied) and stores the result, as big as the input. The worker's resident memory is read while
 *    BENCH_MEMORY_TASKS (3) such tasks run at once; the same ffmpeg command run directly on local copies is the floor
 *    of the time (the same number at once).
 */
import { Queue } from 'bullmq';
import { execFile, fork } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signToken } from '../src/auth/token';
import { AppConfig } from '../src/config/app-config';
import {
  admin,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  PG,
  processUsage,
  REDIS,
  sleep,
  stop,
  waitForHttp,
} from './support';
import { redisOptionsFromUrl } from '../src/queue/redis-options';

const run = promisify(execFile);
const DB = 'media_bench_memory';
const MIB = 1024 * 1024;
const TARGET_MB = Number(process.env.BENCH_MEMORY_MB ?? 400);
const TASKS = Number(process.env.BENCH_MEMORY_TASKS ?? 3);
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-memory-'));
const PORT = 3961;
const CLIP_SECONDS = 4;
const DRAIN_TASKS = Number(process.env.BENCH_MEMORY_DRAIN_TASKS ?? 5000);
/** The drains' concurrencies: a number, or `default` (WORKER_CONCURRENCY left unset). */
const DRAIN_CONCURRENCIES = (process.env.BENCH_MEMORY_CONCURRENCY ?? '100,default').split(',');
const API_PORT = 3962;
const WORKER_PORT = 3963;
const SANDBOX_PORT = '4230';

/** A 720p H.264 video of about TARGET_MB: a few seconds of noise (hard to compress), repeated without re-encoding. */
async function makeVideo(): Promise<{ video: string; seconds: number }> {
  const clip = join(SCRATCH, 'clip.mp4');
  await run('ffmpeg', [
    '-hide_banner',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=1280x720:rate=25:duration=${CLIP_SECONDS},noise=alls=60:allf=t`,
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-qp',
    '10',
    '-pix_fmt',
    'yuv420p',
    clip,
  ]);
  const loops = Math.max(0, Math.ceil((TARGET_MB * MIB) / statSync(clip).size) - 1);
  const video = join(SCRATCH, 'big.mp4');
  await run('ffmpeg', ['-hide_banner', '-y', '-stream_loop', String(loops), '-i', clip, '-c', 'copy', video]);
  return { video, seconds: (loops + 1) * CLIP_SECONDS };
}

/** TASKS runs of the same ffmpeg command at once, on local files: seconds until the last ends. */
async function direct(video: string, audio: string): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: TASKS }, (_, i) =>
      run('ffmpeg', [
        '-hide_banner',
        '-y',
        '-i',
        video,
        '-i',
        audio,
        '-map',
        '0:v:0',
        '-map',
        '1:a:0',
        '-c:v',
        'copy',
        '-c:a',
        'aac',
        '-b:a',
        '192k',
        '-shortest',
        '-movflags',
        '+faststart',
        join(SCRATCH, `direct-${i}.mp4`),
      ]),
    ),
  );
  return (performance.now() - started) / 1000;
}

async function platform(base: string): Promise<{ idleMb: number; peakMb: number; seconds: number }> {
  const prefix = `benchmem${process.pid}`;
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const child = forkPlatform(DB, {
    APP_ROLE: 'all',
    PORT: String(PORT),
    REDIS_PREFIX: prefix,
    // The worker's own ffmpeg runs the tasks: in the sandbox the RunPod emulator would take them, and it keeps outputs
    // within a 256 MiB budget, so of three finished at once only the last could still be copied.
    PROVIDERS_MODE: 'live',
    WORKER_CONCURRENCY: String(TASKS),
    WEBHOOK_ALLOW_PRIVATE: 'true', // the inputs are served on loopback
    NODE_ENV: 'development',
    STORAGE_DIR: join(SCRATCH, 'outputs'),
    CACHE_DIR: join(SCRATCH, 'cache'),
  });
  try {
    await waitForHttp(`http://127.0.0.1:${PORT}/health/live`);
    await sleep(1000); // let the boot's allocations settle before the idle reading
    const idleMb = processUsage(child.pid!).rssMb;
    let peakMb = idleMb;
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const started = performance.now();
    const ids = await Promise.all(
      Array.from({ length: TASKS }, async (_, i) => {
        const res = await fetch(`http://127.0.0.1:${PORT}/api/v1/media/videos/addaudio`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            url_video: `${base}/big.mp4`,
            url_audio: `${base}/tone.mp3`,
            output_filename: `o${i}`,
            cache: 'bypass',
          }),
        });
        if (res.status !== 202) throw new Error(`addaudio answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    const deadline = Date.now() + 600_000;
    for (const id of ids) {
      for (;;) {
        peakMb = Math.max(peakMb, processUsage(child.pid!).rssMb);
        const task = (await (await fetch(`http://127.0.0.1:${PORT}/api/v1/media/tasks/${id}`, { headers })).json()) as {
          status: string;
          error?: unknown;
        };
        if (task.status === 'completed') break;
        if (task.status === 'failed') throw new Error(`task failed: ${JSON.stringify(task.error)}`);
        if (Date.now() > deadline) throw new Error('tasks did not finish in 10 minutes');
        await sleep(20);
      }
    }
    return { idleMb, peakMb, seconds: (performance.now() - started) / 1000 };
  } finally {
    await stop(child);
    await deleteRedisKeys(prefix);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  }
}

/** Samples a process's RSS every 50 ms until `until` resolves: the highest reading (MiB). */
async function peakWhile(pid: number, until: Promise<unknown>): Promise<number> {
  let peak = processUsage(pid).rssMb;
  let settled = false;
  void until.finally(() => (settled = true));
  while (!settled) {
    peak = Math.max(peak, processUsage(pid).rssMb);
    await sleep(50);
  }
  return peak;
}

/** RSS (MiB) of a freshly booted process, once its boot's allocations have settled. */
async function settledRss(pid: number): Promise<number> {
  await sleep(1000);
  return processUsage(pid).rssMb;
}

/** Each role at rest, booted as `npm start` boots it (sandbox providers): RSS in MiB. */
async function rolesAtRest(prefix: string): Promise<Record<string, number>> {
  const idle: Record<string, number> = {};
  for (const role of ['api', 'worker', 'all']) {
    const child = forkPlatform(DB, {
      APP_ROLE: role,
      PORT: String(WORKER_PORT),
      REDIS_PREFIX: prefix,
      PROVIDERS_MODE: 'sandbox',
      SANDBOX_PORT,
    });
    try {
      await waitForHttp(`http://127.0.0.1:${WORKER_PORT}/health/live`);
      idle[role] = await settledRss(child.pid!);
    } finally {
      await stop(child);
    }
  }
  return idle;
}

/** The bare worker (memory-floor.ts) at rest, then draining `count` no-op jobs at `concurrency`: RSS in MiB. */
async function floorDrain(
  prefix: string,
  concurrency: number,
  count: number,
): Promise<{ idleMb: number; peakMb: number }> {
  const queue = new Queue('raw', { connection: redisOptionsFromUrl(REDIS) as never, prefix: `{${prefix}}` });
  try {
    const jobs = Array.from({ length: count }, (_, n) => ({
      name: 'noop',
      data: { n },
      opts: { removeOnComplete: true },
    }));
    await queue.addBulk(jobs);
    const child = fork(
      join(__dirname, 'memory-floor.js'),
      [`${PG}/${DB}`, REDIS, prefix, String(concurrency), String(count)],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    const message = (expected: string) =>
      new Promise<void>((resolve) => child.on('message', (m) => m === expected && resolve()));
    try {
      await message('ready');
      const idleMb = await settledRss(child.pid!);
      child.send('go');
      const peakMb = await peakWhile(child.pid!, message('done'));
      return { idleMb, peakMb };
    } finally {
      await stop(child);
    }
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/**
 * DRAIN_TASKS image tasks submitted through an API process (which also hosts the sandbox's emulators), then drained
 * by one worker process at `concurrency` (undefined: the default): its RSS at rest and at most, and tasks per second.
 */
async function platformDrain(
  prefix: string,
  concurrency: number | undefined,
): Promise<{ idleMb: number; peakMb: number; perSecond: number; cpuMsPerTask: number }> {
  await admin((c) => c.query('TRUNCATE tasks CASCADE'), DB);
  const env = { REDIS_PREFIX: prefix, PROVIDERS_MODE: 'sandbox', SANDBOX_PORT };
  const api = forkPlatform(DB, { ...env, APP_ROLE: 'api', PORT: String(API_PORT) });
  try {
    await waitForHttp(`http://127.0.0.1:${API_PORT}/health/live`);
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const body = JSON.stringify({
      prompt: 'a lighthouse at dawn',
      size: '512x512',
      model: 'dall-e-2',
      cache: 'bypass',
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < DRAIN_TASKS) {
          next++;
          const res = await fetch(`http://127.0.0.1:${API_PORT}/api/v1/media/images/generate`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body,
          });
          if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
    const worker = forkPlatform(DB, {
      ...env,
      APP_ROLE: 'worker',
      PORT: String(WORKER_PORT),
      ...(concurrency
        ? { WORKER_CONCURRENCY: String(concurrency), DATABASE_POOL_SIZE: String(Math.min(50, concurrency + 5)) }
        : {}),
    });
    try {
      await waitForHttp(`http://127.0.0.1:${WORKER_PORT}/health/live`);
      const idleMb = await settledRss(worker.pid!);
      const cpuBefore = processUsage(worker.pid!).cpuSeconds;
      const started = performance.now();
      const drained = (async () => {
        const deadline = Date.now() + 900_000;
        for (;;) {
          const done = await admin(
            (c) =>
              c.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE status IN ('completed', 'failed')`),
            DB,
          );
          if (done.rows[0].n >= DRAIN_TASKS) return;
          if (Date.now() > deadline) throw new Error(`only ${done.rows[0].n} of ${DRAIN_TASKS} tasks finished`);
          await sleep(200);
        }
      })();
      const peakMb = await peakWhile(worker.pid!, drained);
      await drained;
      return {
        idleMb,
        peakMb,
        perSecond: Math.round(DRAIN_TASKS / ((performance.now() - started) / 1000)),
        cpuMsPerTask: Math.round(((processUsage(worker.pid!).cpuSeconds - cpuBefore) * 100000) / DRAIN_TASKS) / 100,
      };
    } finally {
      await stop(worker);
    }
  } finally {
    await stop(api);
  }
}

/** The roles at rest and the drains, beside the bare worker: one table. */
async function processes(): Promise<void> {
  const prefix = `benchmemr${process.pid}`;
  /** The deployments' prefixes (each drain has its own): every one's keys are deleted at the end. */
  const prefixes = [prefix];
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  try {
    process.stderr.write('each role at rest…\n');
    const idle = await rolesAtRest(prefix);
    const rows: Record<string, string | number>[] = [];
    const floorAtRest = (await floorDrain(`${prefix}f0`, 1, 1)).idleMb;
    rows.push({ target: 'bare worker (Fastify, pg, BullMQ Worker) at rest (floor)', 'RSS MiB': floorAtRest });
    for (const role of ['api', 'worker', 'all']) {
      rows.push({
        target: `APP_ROLE=${role} at rest`,
        'RSS MiB': idle[role],
        'over the floor': idle[role] - floorAtRest,
      });
    }
    for (const given of DRAIN_CONCURRENCIES) {
      const concurrency = given === 'default' ? undefined : Number(given);
      const floorConcurrency = concurrency ?? AppConfig.fromEnv({}).workerConcurrency;
      process.stderr.write(`bare worker draining ${DRAIN_TASKS} no-op jobs at concurrency ${floorConcurrency}…\n`);
      const floor = await floorDrain(`${prefix}f${floorConcurrency}`, floorConcurrency, DRAIN_TASKS);
      rows.push({
        target: `bare worker draining no-op jobs, concurrency ${floorConcurrency} (floor)`,
        'RSS MiB': `${floor.idleMb} / ${floor.peakMb}`,
      });
      process.stderr.write(`worker draining ${DRAIN_TASKS} tasks, concurrency ${given}…\n`);
      prefixes.push(`${prefix}w${given}`);
      const ours = await platformDrain(`${prefix}w${given}`, concurrency);
      rows.push({
        target: `APP_ROLE=worker draining ${DRAIN_TASKS} image tasks, concurrency ${given === 'default' ? `${floorConcurrency} (default)` : given}`,
        'RSS MiB': `${ours.idleMb} / ${ours.peakMb}`,
        'over the floor': ours.peakMb - floor.peakMb,
        'tasks/s': ours.perSecond,
        'worker CPU ms/task': ours.cpuMsPerTask,
      });
    }
    console.table(rows);
    console.log('RSS MiB: at rest, or at rest / at most while draining; target: a worker at most 150 MiB at its peak');
  } finally {
    for (const used of prefixes) await deleteRedisKeys(used);
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  }
}

async function bigFiles(): Promise<void> {
  process.stderr.write(`making a ${TARGET_MB} MiB video…\n`);
  const { video, seconds } = await makeVideo();
  const audio = join(SCRATCH, 'tone.mp3');
  await run('ffmpeg', [
    '-hide_banner',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:duration=${seconds + 5}`,
    '-c:a',
    'libmp3lame',
    audio,
  ]);
  const files: Record<string, string> = { '/big.mp4': video, '/tone.mp3': audio };
  const server = createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const inputMb = Math.round(statSync(video).size / MIB);
    process.stderr.write('ffmpeg directly…\n');
    const floor = await direct(video, audio);
    process.stderr.write(`platform, ${TASKS} addaudio tasks at once…\n`);
    const ours = await platform(base);
    console.table([
      {
        target: `ffmpeg directly, ${TASKS} at once (floor)`,
        'input MiB': inputMb,
        seconds: Math.round(floor * 10) / 10,
      },
      {
        target: `platform, ${TASKS} addaudio tasks at once`,
        'input MiB': inputMb,
        seconds: Math.round(ours.seconds * 10) / 10,
        'worker MiB idle / peak': `${ours.idleMb} / ${ours.peakMb}`,
        'peak − idle MiB': ours.peakMb - ours.idleMb,
      },
    ]);
    console.log(
      `each task moves ${inputMb} MiB in and ${inputMb} MiB out; held in memory, ${TASKS} tasks would need over ${2 * TASKS * inputMb} MiB`,
    );
  } finally {
    server.close();
    rmSync(SCRATCH, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await processes();
  if (TARGET_MB > 0) await bigFiles();
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
