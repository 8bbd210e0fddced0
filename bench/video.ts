/**
 * img2vid on local ffmpeg: clips per second for 1-second 720p clips through the platform (one worker process at
 * WORKER_CONCURRENCY 1 and 2), beside the same ffmpeg command run directly, one and two at a time, in the same run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signToken } from '../src/auth/token';
import { img2vidArgs } from '../src/providers/adapters/ffmpeg/ffmpeg.provider';
import { admin, BENCH_JWT_SECRET, deleteRedisKeys, forkPlatform, stop, waitForHttp } from './support';

const run = promisify(execFile);
const DB = 'media_bench_video';
const CLIPS = Number(process.env.BENCH_VIDEO_CLIPS ?? 24);
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-video-'));

async function direct(source: string, parallel: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < CLIPS) {
        const i = next++;
        await run('ffmpeg', img2vidArgs(source, join(SCRATCH, `direct-${parallel}-${i}.mp4`), 1));
      }
    }),
  );
  return CLIPS / ((performance.now() - started) / 1000);
}

async function platform(imageUrl: string, concurrency: number, prefix: string): Promise<number> {
  const child = forkPlatform(DB, {
    APP_ROLE: 'all',
    PORT: '3951',
    REDIS_PREFIX: prefix,
    // As many encodes at once as the floor runs, whatever the machine's cores (LOCAL_CPU_CONCURRENCY's default).
    WORKER_CONCURRENCY: String(concurrency),
    LOCAL_CPU_CONCURRENCY: String(concurrency),
    WEBHOOK_ALLOW_PRIVATE: 'true', // the images are served on loopback
    NODE_ENV: 'development',
    STORAGE_DIR: join(SCRATCH, 'outputs'),
    CACHE_DIR: join(SCRATCH, 'cache'),
  });
  try {
    await waitForHttp('http://127.0.0.1:3951/health/live');
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const started = performance.now();
    // One clip per task, all submitted at once, each waited for: the worker runs `concurrency` at a time.
    await Promise.all(
      Array.from({ length: CLIPS }, async (_, i) => {
        const res = await fetch('http://127.0.0.1:3951/api/v1/media/videos/img2vid', {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', prefer: 'wait=60' },
          body: JSON.stringify({ images: [{ id: `c${i}`, image_url: imageUrl, duracao: 1 }], cache: 'bypass' }),
        });
        if (res.status !== 200) throw new Error(`img2vid answered ${res.status}: ${await res.text()}`);
      }),
    );
    return CLIPS / ((performance.now() - started) / 1000);
  } finally {
    await stop(child);
    await deleteRedisKeys(prefix);
  }
}

async function main(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  const source = join(SCRATCH, 'frame.png');
  await run('ffmpeg', ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=1280x720', '-frames:v', '1', source]);
  const png = readFileSync(source);
  const server = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(png));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const imageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/frame.png`;
  const rows: Record<string, string | number>[] = [];
  try {
    for (const parallel of [1, 2]) {
      process.stderr.write(`ffmpeg directly, ${parallel} at a time…\n`);
      const floor = await direct(source, parallel);
      process.stderr.write(`platform, WORKER_CONCURRENCY ${parallel}…\n`);
      const ours = await platform(imageUrl, parallel, `benchvid${process.pid}c${parallel}`);
      rows.push(
        {
          target: `ffmpeg directly, ${parallel} at a time (floor)`,
          'clips/s': Math.round(floor * 100) / 100,
          ratio: 1,
        },
        {
          target: `platform img2vid, WORKER_CONCURRENCY ${parallel}`,
          'clips/s': Math.round(ours * 100) / 100,
          ratio: Math.round((ours / floor) * 100) / 100,
        },
      );
    }
  } finally {
    server.close();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
    rmSync(SCRATCH, { recursive: true, force: true });
  }
  console.table(rows);
  console.log(`${CLIPS} one-second 1280x720 clips per run, from a 1280x720 PNG`);
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
