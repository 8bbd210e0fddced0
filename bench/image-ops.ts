/**
 * Image operations on the worker's own CPU (`image-local`, sharp): images per second of `stencil` and `enhance` ×2 of
 * a 2048×2048 photo-like picture through one platform process (APP_ROLE=all; WORKER_CONCURRENCY,
 * IMAGE_EDIT_CONCURRENCY and LOCAL_CPU_CONCURRENCY at their defaults), the picture served on loopback, beside the
 * floor: the very functions of `image-ops.ts` called directly in this plain Node process on a local copy of the same
 * picture, as many at once as the platform runs (the smallest of WORKER_CONCURRENCY, the operation's cap and
 * LOCAL_CPU_CONCURRENCY, the machine's cores). Then the resident memory of a fresh
 * platform process, sampled every 100 ms, while BENCH_IMAGE_MEMORY_TASKS (10) enhances ×2 of a 4000×4000 picture are
 * submitted at once (4096×4096 ×2 would make 8192×8192, over the 64 megapixels an output may have: such a task is
 * refused, which the first run checks).
 */
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { signToken } from '../src/auth/token';
import { AppConfig } from '../src/config/app-config';
import { IMAGE_LIMITS } from '../src/providers/adapters/image-local/image-local.provider';
import { enhance, EnhanceOptions, stencil, StencilOptions } from '../src/providers/adapters/image-local/image-ops';
import { IMAGE_EDIT_DEFAULTS } from '../src/tasks/dto/image-edit.dto';
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

const DB = 'media_bench_images';
const PORT = 3971;
const BASE = `http://127.0.0.1:${PORT}`;
const SIZE = 2048;
/** The largest square an enhance ×2 may take (its output is held to 64 megapixels). */
const MEMORY_SIZE = 4000;
const REFUSED_SIZE = 4096;
const STENCILS = Number(process.env.BENCH_IMAGE_STENCILS ?? 20);
const ENHANCES = Number(process.env.BENCH_IMAGE_ENHANCES ?? 6);
const MEMORY_TASKS = Number(process.env.BENCH_IMAGE_MEMORY_TASKS ?? 10);
const SCRATCH = mkdtempSync(join(tmpdir(), 'media-bench-images-'));
/** The defaults, whatever this shell's environment says: the platform is started with these. */
const DEFAULTS = AppConfig.fromEnv({});
const FORMAT = IMAGE_EDIT_DEFAULTS.outputFormat;
const STENCIL: StencilOptions = {
  style: IMAGE_EDIT_DEFAULTS.style,
  thickness: IMAGE_EDIT_DEFAULTS.thickness,
  threshold: IMAGE_EDIT_DEFAULTS.threshold,
  detail: IMAGE_EDIT_DEFAULTS.detail,
  background: IMAGE_EDIT_DEFAULTS.background,
};
const ENHANCE: EnhanceOptions = { scale: 2, strength: IMAGE_EDIT_DEFAULTS.enhanceStrength };

type Operation = 'stencil' | 'enhance';

/**
 * A photo-like JPEG: smooth colour fields (sines across the frame), a fine texture, and shapes with hard edges (a
 * light card, a dark disc, a ring, a red triangle) where a stencil finds its lines.
 */
async function scene(size: number): Promise<Buffer> {
  const rgb = Buffer.alloc(size * size * 3);
  const k = size / 2048;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const texture = ((x * 7 + y * 13) % 11) - 5;
      rgb[i] = Math.max(0, Math.min(255, Math.round(90 + 80 * Math.sin(x / (97 * k)) + texture)));
      rgb[i + 1] = Math.max(0, Math.min(255, Math.round(100 + 60 * Math.cos(y / (71 * k)) + texture)));
      rgb[i + 2] = Math.max(0, Math.min(255, Math.round(110 + 50 * Math.sin((x + y) / (131 * k)) + texture)));
    }
  }
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">` +
      `<rect x="${200 * k}" y="${300 * k}" width="${600 * k}" height="${400 * k}" fill="#f0f0f0"/>` +
      `<circle cx="${1400 * k}" cy="${900 * k}" r="${300 * k}" fill="#151515"/>` +
      `<circle cx="${700 * k}" cy="${1500 * k}" r="${250 * k}" fill="none" stroke="#606060" stroke-width="${12 * k}"/>` +
      `<polygon points="${1200 * k},${1700 * k} ${1800 * k},${1900 * k} ${1500 * k},${1300 * k}" fill="#a03020"/>` +
      `</svg>`,
  );
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .composite([{ input: svg }])
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * How many of `operation` the platform runs at once at the defaults: WORKER_CONCURRENCY, the operation's cap, or the
 * turns at the process's CPU (LOCAL_CPU_CONCURRENCY), whichever is smallest.
 */
function concurrencyOf(operation: Operation): number {
  return Math.min(DEFAULTS.workerConcurrency, DEFAULTS.imageEditConcurrency[operation], DEFAULTS.localCpuConcurrency);
}

/**
 * The floor: `count` runs of the operation's function on a local file, `parallel` at a time; images per second, and
 * the CPU seconds this process used for each.
 */
async function direct(
  operation: Operation,
  file: string,
  count: number,
  parallel: number,
): Promise<{ perSecond: number; cpuPerImage: number }> {
  const once = () =>
    operation === 'stencil'
      ? stencil(file, STENCIL, FORMAT, IMAGE_LIMITS)
      : enhance(file, ENHANCE, FORMAT, IMAGE_LIMITS);
  await once(); // compiles the JS passes and loads libvips' operations, as the platform's warm-up does
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        await once();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  return { perSecond: count / seconds, cpuPerImage: (user + system) / 1e6 / count };
}

interface FinishedTask {
  id: string;
  status: string;
  error: { code?: string; message?: string } | null;
}

/** Submits one image_edit task and waits until it finishes (Prefer: wait, then polling past its 60 s). */
async function editTask(token: string, body: Record<string, unknown>): Promise<FinishedTask> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const res = await fetch(`${BASE}/api/v1/media/images/edit`, {
    method: 'POST',
    headers: { ...headers, prefer: 'wait=60' },
    body: JSON.stringify({ ...body, cache: 'bypass' }),
  });
  if (res.status !== 200 && res.status !== 202)
    throw new Error(`images/edit answered ${res.status}: ${await res.text()}`);
  let task = (await res.json()) as FinishedTask;
  while (task.status !== 'completed' && task.status !== 'failed') {
    await sleep(250);
    task = (await (await fetch(`${BASE}/api/v1/media/tasks/${task.id}`, { headers })).json()) as FinishedTask;
  }
  return task;
}

/** `count` tasks submitted at once, each waited for; images per second from the first submit to the last finish. */
async function throughPlatform(token: string, body: Record<string, unknown>, count: number): Promise<number> {
  const started = performance.now();
  const tasks = await Promise.all(Array.from({ length: count }, () => editTask(token, body)));
  const failed = tasks.find((t) => t.status !== 'completed');
  if (failed) throw new Error(`a task failed: ${JSON.stringify(failed.error)}`);
  return count / ((performance.now() - started) / 1000);
}

function boot(prefix: string): ChildProcess {
  return forkPlatform(DB, {
    APP_ROLE: 'all',
    PORT: String(PORT),
    REDIS_PREFIX: prefix,
    // Stated, so a value in this shell's environment cannot change them.
    WORKER_CONCURRENCY: String(DEFAULTS.workerConcurrency),
    LOCAL_CPU_CONCURRENCY: String(DEFAULTS.localCpuConcurrency),
    IMAGE_EDIT_CONCURRENCY: Object.entries(DEFAULTS.imageEditConcurrency)
      .map(([operation, n]) => `${operation}=${n}`)
      .join(','),
    WEBHOOK_ALLOW_PRIVATE: 'true', // the pictures are served on loopback
    NODE_ENV: 'development',
    STORAGE_DIR: join(SCRATCH, 'outputs'),
    CACHE_DIR: join(SCRATCH, 'cache'),
  });
}

const round = (n: number, places = 2) => Math.round(n * 10 ** places) / 10 ** places;

async function throughput(imageBase: string, localFile: string): Promise<Record<string, string | number>[]> {
  const prefix = `benchimg${process.pid}t`;
  const child = boot(prefix);
  const rows: Record<string, string | number>[] = [];
  try {
    await waitForHttp(`${BASE}/health/live`);
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const bodies: Record<Operation, Record<string, unknown>> = {
      stencil: { operation: 'stencil', image_url: `${imageBase}/scene.jpg` },
      enhance: { operation: 'enhance', image_url: `${imageBase}/scene.jpg`, scale: 2 },
    };
    // Warm-up: the first task of each operation compiles the platform's paths and the JS passes.
    for (const body of Object.values(bodies)) {
      const task = await editTask(token, body);
      if (task.status !== 'completed') throw new Error(`warm-up failed: ${JSON.stringify(task.error)}`);
    }
    for (const [operation, count] of [
      ['stencil', STENCILS],
      ['enhance', ENHANCES],
    ] as const) {
      if (!count) continue;
      const parallel = concurrencyOf(operation);
      const label = operation === 'enhance' ? 'enhance ×2' : operation;
      process.stderr.write(`${label}: sharp directly, ${parallel} at a time…\n`);
      const idleCpu = processUsage(child.pid!).cpuSeconds;
      const floor = await direct(operation, localFile, count, parallel);
      const platformCpu = processUsage(child.pid!).cpuSeconds - idleCpu;
      process.stderr.write(`${label}: platform, ${count} tasks at once…\n`);
      const busyCpu = processUsage(child.pid!).cpuSeconds;
      const ours = await throughPlatform(token, bodies[operation], count);
      const oursCpu = processUsage(child.pid!).cpuSeconds - busyCpu;
      rows.push(
        {
          target: `${label}: sharp directly, ${parallel} at a time (floor)`,
          'images/s': round(floor.perSecond),
          ratio: 1,
          'CPU s / image': round(floor.cpuPerImage),
          // The platform process sits idle meanwhile: what it used of the machine during the floor.
          'idle platform CPU s': round(platformCpu, 1),
        },
        {
          target: `${label}: platform, ${parallel} at a time`,
          'images/s': round(ours),
          ratio: round(ours / floor.perSecond),
          'CPU s / image': round(oursCpu / count),
        },
      );
    }
    // A ×2 of 4096×4096 would make 8192×8192: refused before it is decoded.
    const refused = await editTask(token, {
      operation: 'enhance',
      image_url: `${imageBase}/refused.jpg`,
      scale: 2,
    });
    if (refused.status !== 'failed' || refused.error?.code !== 'input_too_large') {
      throw new Error(`a ×2 of ${REFUSED_SIZE}×${REFUSED_SIZE} was not refused: ${JSON.stringify(refused)}`);
    }
  } finally {
    await stop(child);
    await deleteRedisKeys(prefix);
  }
  return rows;
}

async function memory(imageBase: string): Promise<Record<string, string | number>> {
  const prefix = `benchimg${process.pid}m`;
  const child = boot(prefix);
  let sampler: NodeJS.Timeout | undefined;
  try {
    await waitForHttp(`${BASE}/health/live`);
    await sleep(1000); // the boot's allocations settle before the idle reading
    const idleMb = processUsage(child.pid!).rssMb;
    let peakMb = idleMb;
    sampler = setInterval(() => {
      try {
        peakMb = Math.max(peakMb, processUsage(child.pid!).rssMb);
      } catch {
        // the process has gone: the run fails below
      }
    }, 100);
    const token = signToken(BENCH_JWT_SECRET, { sub: 'bench', ttl: '1h' });
    const started = performance.now();
    const tasks = await Promise.all(
      Array.from({ length: MEMORY_TASKS }, () =>
        editTask(token, { operation: 'enhance', image_url: `${imageBase}/big.jpg`, scale: 2 }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const failed = tasks.find((t) => t.status !== 'completed');
    if (failed) throw new Error(`a task failed: ${JSON.stringify(failed.error)}`);
    clearInterval(sampler);
    await sleep(1000);
    const afterMb = processUsage(child.pid!).rssMb;
    return {
      target: `platform, ${MEMORY_TASKS} enhances ×2 of ${MEMORY_SIZE}×${MEMORY_SIZE} at once (${concurrencyOf('enhance')} run at a time)`,
      seconds: round(seconds, 1),
      'worker MiB idle / peak / 1 s after': `${idleMb} / ${peakMb} / ${afterMb}`,
    };
  } finally {
    clearInterval(sampler);
    await stop(child);
    await deleteRedisKeys(prefix);
  }
}

async function main(): Promise<void> {
  const began = performance.now();
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  process.stderr.write('making the pictures…\n');
  const refused = await scene(REFUSED_SIZE);
  const files: Record<string, Buffer> = {
    '/scene.jpg': await scene(SIZE),
    '/big.jpg': await sharp(refused).extract({ left: 0, top: 0, width: MEMORY_SIZE, height: MEMORY_SIZE }).toBuffer(),
    '/refused.jpg': refused,
  };
  const localFile = join(SCRATCH, 'scene.jpg');
  writeFileSync(localFile, files['/scene.jpg']);
  const server = createServer((req, res) => {
    const body = files[req.url ?? ''];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const imageBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const rows = await throughput(imageBase, localFile);
    const mem: Record<string, string | number>[] = [];
    if (MEMORY_TASKS) {
      process.stderr.write(`memory: ${MEMORY_TASKS} enhances ×2 of ${MEMORY_SIZE}×${MEMORY_SIZE}…\n`);
      mem.push(await memory(imageBase));
    }
    console.table(rows);
    if (mem.length) console.table(mem);
    console.log(
      `${SIZE}×${SIZE} JPEG (${Math.round(files['/scene.jpg'].length / 1024)} KiB), ${FORMAT} out; ` +
        `${STENCILS} stencils and ${ENHANCES} enhances per run (BENCH_IMAGE_STENCILS, BENCH_IMAGE_ENHANCES); ` +
        `WORKER_CONCURRENCY ${DEFAULTS.workerConcurrency}, LOCAL_CPU_CONCURRENCY ${DEFAULTS.localCpuConcurrency} and ` +
        `IMAGE_EDIT_CONCURRENCY stencil=${DEFAULTS.imageEditConcurrency.stencil},` +
        `enhance=${DEFAULTS.imageEditConcurrency.enhance} (the defaults); target ratio ≥ 0.8. A ×2 of ${REFUSED_SIZE}×${REFUSED_SIZE} was refused (input_too_large). ` +
        `Took ${Math.round((performance.now() - began) / 1000)} s.`,
    );
  } finally {
    server.close();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
    rmSync(SCRATCH, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
