import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { downloadMedia } from '../providers/media-download';
import { OutputUrlGuard } from '../security/url-guard';
import { LocalStorageBackend } from './local-storage.backend';
import { S3StorageBackend } from './s3-storage.backend';
import { StorageService } from './storage.service';

const MIB = 1024 * 1024;
/** Big enough that holding it once (let alone twice, as chunks and their concatenation) cannot hide in the noise. */
const SIZE = 320 * MIB;
/** What moving the file may add to the process's resident memory: buffers in flight and the allocator's slack. */
const MAX_GROWTH = 96 * MIB;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Runs `work` while sampling the resident set size; answers how far it rose above where it started. */
async function rssGrowth(work: () => Promise<unknown>): Promise<number> {
  global.gc?.();
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage.rss()) - start;
}

describe('moving big files keeps memory flat', () => {
  let dir: string;
  let source: string;
  let sourceSha: string;
  let server: Server;
  let base: string;
  let storage: StorageService;
  const guard = new OutputUrlGuard(true);
  const puts: { url: string; size: number; sha256: string; declared: unknown }[] = [];
  /** Bytes the server had sent when each GET ended. */
  const sent: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-memory-'));
    source = join(dir, 'big.bin');
    const block = randomBytes(MIB);
    const out = createWriteStream(source);
    for (let i = 0; i < SIZE / MIB; i++) {
      if (!out.write(block)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    sourceSha = await sha256Of(source);
    server = createServer((req, res) => {
      if (req.method === 'PUT') {
        // An S3-compatible bucket: hashes what arrives and keeps none of it.
        const hash = createHash('sha256');
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          size += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () => {
          puts.push({ url: req.url!, size, sha256: hash.digest('hex'), declared: req.headers['x-amz-content-sha256'] });
          res.writeHead(200).end();
        });
        return;
      }
      // Chunked (no length announced), so only the byte counter can stop a download that goes on too long.
      const before = req.socket.bytesWritten;
      res.on('close', () => sent.push(req.socket.bytesWritten - before));
      res.writeHead(200, { 'content-type': 'video/mp4', 'transfer-encoding': 'chunked' });
      createReadStream(source).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const backend = new LocalStorageBackend({
      dir: join(dir, 'store'),
      secret: 'x'.repeat(32),
      ttlSeconds: 60,
      publicBaseUrl: '',
    });
    storage = new StorageService(backend, guard);
  }, 60_000);
  afterAll(async () => {
    await guard.close();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('copies a 320 MB provider output from a URL into storage', async () => {
    let stored: Awaited<ReturnType<StorageService['saveArtifacts']>> = [];
    const growth = await rssGrowth(async () => {
      stored = await storage.saveArtifacts('big-1', [{ contentType: 'video/mp4', url: `${base}/clip.mp4` }]);
    });
    console.log(`provider output from a URL, ${SIZE / MIB} MiB: RSS grew ${(growth / MIB).toFixed(1)} MiB`);
    expect(stored[0]).toMatchObject({ size_bytes: SIZE, sha256: sourceSha });
    expect(await sha256Of(join(dir, 'store', stored[0].key))).toBe(sourceSha);
    expect((await stat(join(dir, 'store', stored[0].key))).size).toBe(SIZE);
    expect(growth).toBeLessThan(MAX_GROWTH);
  }, 60_000);

  it('downloads a 320 MB media input to disk, and stops one past its cap as the bytes arrive', async () => {
    const media = guard;
    let size = 0;
    const growth = await rssGrowth(async () => {
      size = (
        await downloadMedia(`${base}/in.mp4`, join(dir, 'input'), { guard: media, maxBytes: SIZE, timeoutMs: 60_000 })
      ).size;
    });
    console.log(`media input, ${SIZE / MIB} MiB: RSS grew ${(growth / MIB).toFixed(1)} MiB`);
    expect(size).toBe(SIZE);
    expect((await stat(join(dir, 'input'))).size).toBe(SIZE);
    expect(growth).toBeLessThan(MAX_GROWTH);

    sent.length = 0;
    const err = await downloadMedia(`${base}/in.mp4`, join(dir, 'capped'), {
      guard: media,
      maxBytes: 8 * MIB,
      timeoutMs: 60_000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'input_too_large', retryable: false });
    await expect(stat(join(dir, 'capped'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Cut off near the cap, not read to the end: what the server got out is the cap plus what sockets buffer.
    while (sent.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(sent[0]).toBeLessThan(SIZE / 4);
  }, 60_000);

  it('stores a 320 MB output file from disk, locally and in S3 (streamed PUT)', async () => {
    const file = join(dir, 'made.mp4');
    await copyFile(source, file);
    let local: Awaited<ReturnType<StorageService['saveArtifacts']>> = [];
    const localGrowth = await rssGrowth(async () => {
      local = await storage.saveArtifacts('big-2', [{ contentType: 'video/mp4', file, filename: 'made.mp4' }]);
    });
    expect(local[0]).toMatchObject({ key: 'tasks/big-2/made.mp4', size_bytes: SIZE, sha256: sourceSha });
    expect((await stat(join(dir, 'store', 'tasks', 'big-2', 'made.mp4'))).size).toBe(SIZE);
    // Handed over, so moved into place rather than copied (same file system here).
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await copyFile(source, file);

    const s3 = new StorageService(
      new S3StorageBackend(
        {
          endpoint: base,
          region: 'us-east-1',
          bucket: 'media',
          accessKeyId: 'AKIDTEST',
          secretAccessKey: 'test-secret-key',
          forcePathStyle: true,
        },
        60,
      ),
      guard,
    );
    const s3Growth = await rssGrowth(async () => {
      await s3.saveArtifacts('big-3', [{ contentType: 'video/mp4', file, filename: 'made.mp4' }]);
    });
    console.log(
      `output file, ${SIZE / MIB} MiB: RSS grew ${(localGrowth / MIB).toFixed(1)} MiB (local), ${(s3Growth / MIB).toFixed(1)} MiB (S3)`,
    );
    expect(puts).toEqual([{ url: '/media/tasks/big-3/made.mp4', size: SIZE, sha256: sourceSha, declared: sourceSha }]);
    expect(localGrowth).toBeLessThan(MAX_GROWTH);
    expect(s3Growth).toBeLessThan(MAX_GROWTH);
  }, 60_000);
});
