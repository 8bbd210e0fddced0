import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { S3_TEST_KEYS, S3TestServer, startS3Server } from '../../test/support/s3-server';
import { downloadMedia } from '../providers/media-download';
import { OutputUrlGuard } from '../security/url-guard';
import type { StoredFile } from './storage.service';

const MIB = 1024 * 1024;
/** The output moved: big enough that holding it, or any sizeable part of it, cannot hide in the noise. */
const SIZE = 1024 * MIB;
/** What moving it may add to the worker's resident memory: buffers and multipart parts in flight, allocator slack. */
const MAX_GROWTH = 64 * MIB;
/** The output the child moves first, unmeasured (see test/support/storage-transfer.ts). */
const WARM_UP_MIB = 64;
/** The media input download below runs in this process, among the test runner's own allocations. */
const INPUT_SIZE = 320 * MIB;
const MAX_INPUT_GROWTH = 96 * MIB;

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);

/** `size` bytes made as they are sent: one random MiB over and over, never the whole in memory. */
function generated(block: Buffer, size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = block.subarray(0, Math.min(block.length, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(stream, hash);
  return hash.digest('hex');
}

interface Transfer {
  file: StoredFile;
  growth: number;
  startRss: number;
  peakRss: number;
  ms: number;
}

/** Stores one artifact in a child process of its own (test/support/storage-transfer.ts) and reports its memory. */
async function transfer(job: object, base: string): Promise<Transfer> {
  job = { ...job, warmUp: { url: `${base}/warm-up.mp4?mib=${WARM_UP_MIB}` } };
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '-r', './test/support/ts-register.js', 'test/support/storage-transfer.ts', JSON.stringify(job)],
    { cwd: ROOT, maxBuffer: MIB },
  );
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as Transfer;
  console.log(
    `${JSON.stringify(job).slice(0, 60)}…: ${(SIZE / MIB).toFixed(0)} MiB in ${result.ms} ms, RSS ` +
      `${(result.startRss / MIB).toFixed(1)} → ${(result.peakRss / MIB).toFixed(1)} MiB (grew ${(result.growth / MIB).toFixed(1)} MiB)`,
  );
  return result;
}

describe('moving big outputs keeps worker memory flat', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let s3: S3TestServer;
  const block = randomBytes(MIB);
  let expectedSha: string;
  /** Bytes the server had sent when each GET ended. */
  const sent: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-memory-'));
    expectedSha = await sha256Of(generated(block, SIZE));
    server = createServer((req, res) => {
      const mib = new URL(req.url!, base).searchParams.get('mib');
      const size = mib ? Number(mib) * MIB : req.url?.startsWith('/input') ? INPUT_SIZE : SIZE;
      // Chunked (no length announced), so only the byte counter can stop a download that goes on too long.
      const before = req.socket.bytesWritten;
      res.on('close', () => sent.push(req.socket.bytesWritten - before));
      res.writeHead(200, { 'content-type': 'video/mp4', 'transfer-encoding': 'chunked' });
      generated(block, size).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    s3 = await startS3Server();
  }, 60_000);
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams a 1 GiB provider output from its URL into local storage', async () => {
    const store = join(dir, 'store');
    const { file, growth } = await transfer(
      {
        backend: { kind: 'local', dir: store },
        taskId: 'big-1',
        artifact: { url: `${base}/clip.mp4` },
      },
      base,
    );
    expect(file).toMatchObject({ key: 'tasks/big-1/clip.mp4', content_type: 'video/mp4', size_bytes: SIZE });
    expect(file.sha256).toBe(expectedSha);
    expect((await stat(join(store, file.key))).size).toBe(SIZE);
    expect(await sha256Of(createReadStream(join(store, file.key)))).toBe(expectedSha);
    expect(growth).toBeLessThan(MAX_GROWTH);
  }, 180_000);

  it('streams a 1 GiB provider output from its URL into S3 (multipart), served by its presigned link', async () => {
    const { file, growth } = await transfer(
      {
        backend: { kind: 's3', endpoint: s3.endpoint, bucket: s3.bucket, keys: S3_TEST_KEYS },
        taskId: 'big-2',
        artifact: { url: `${base}/clip.mp4` },
      },
      base,
    );
    expect(file).toMatchObject({ key: 'tasks/big-2/clip.mp4', size_bytes: SIZE, sha256: expectedSha });
    const res = await fetch(file.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(SIZE));
    expect(await sha256Of(Readable.fromWeb(res.body as never))).toBe(expectedSha);
    expect(growth).toBeLessThan(MAX_GROWTH);
  }, 180_000);

  it("streams a worker's 1 GiB output file into S3", async () => {
    const made = join(dir, 'made.mp4');
    await pipeline(generated(block, SIZE), createWriteStream(made));
    const { file, growth } = await transfer(
      {
        backend: { kind: 's3', endpoint: s3.endpoint, bucket: s3.bucket, keys: S3_TEST_KEYS },
        taskId: 'big-3',
        artifact: { file: made, filename: 'made.mp4', contentType: 'video/mp4' },
      },
      base,
    );
    expect(file).toMatchObject({ key: 'tasks/big-3/made.mp4', size_bytes: SIZE, sha256: expectedSha });
    const res = await fetch(file.url);
    expect(await sha256Of(Readable.fromWeb(res.body as never))).toBe(expectedSha);
    expect(growth).toBeLessThan(MAX_GROWTH);
  }, 180_000);

  it('downloads a 320 MB media input to disk, and stops one past its cap as the bytes arrive', async () => {
    const guard = new OutputUrlGuard(true);
    global.gc?.();
    const start = process.memoryUsage.rss();
    let peak = start;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
    let size = 0;
    try {
      size = (
        await downloadMedia(`${base}/input.mp4`, join(dir, 'input'), { guard, maxBytes: INPUT_SIZE, timeoutMs: 60_000 })
      ).size;
    } finally {
      clearInterval(timer);
    }
    const growth = Math.max(peak, process.memoryUsage.rss()) - start;
    console.log(`media input, ${INPUT_SIZE / MIB} MiB: RSS grew ${(growth / MIB).toFixed(1)} MiB`);
    expect(size).toBe(INPUT_SIZE);
    expect((await stat(join(dir, 'input'))).size).toBe(INPUT_SIZE);
    expect(growth).toBeLessThan(MAX_INPUT_GROWTH);

    sent.length = 0;
    const err = await downloadMedia(`${base}/input.mp4`, join(dir, 'capped'), {
      guard,
      maxBytes: 8 * MIB,
      timeoutMs: 60_000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'input_too_large', retryable: false });
    await expect(stat(join(dir, 'capped'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Cut off near the cap, not read to the end: what the server got out is the cap plus what sockets buffer.
    while (sent.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(sent[0]).toBeLessThan(INPUT_SIZE / 4);
    await guard.close();
  }, 60_000);
});
