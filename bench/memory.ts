/**
 * Memory of a worker moving big files: addaudio tasks on a video of BENCH_MEMORY_MB (400) MiB, served from loopback,
 * through one platform process (APP_ROLE=all). Each task downloads the video and the audio, probes them, muxes them
 * (video copied) and stores the result, as big as the input. The worker's resident memory is read from /proc while
 * BENCH_MEMORY_TASKS (3) such tasks run at once; the same ffmpeg command run directly on local copies is the floor
 * of the time (the same number at once).
 */
import { execFile } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signToken } from '../src/auth/token';
import {
  admin,
  BENCH_JWT_SECRET,
  deleteRedisKeys,
  forkPlatform,
  processUsage,
  sleep,
  stop,
  waitForHttp,
} from './support';

const run = promisify(execFile);
const DB = 'media_bench_memory';
const MIB = 1024 * 1024;
const TARGET_MB = Number(process.env.BENCH_MEMORY_MB ?? 400);
const TASKS = Number(process.env.BENCH_MEMORY_TASKS ?? 3);
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-memory-'));
const PORT = 3961;
const CLIP_SECONDS = 4;

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

async function main(): Promise<void> {
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

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
