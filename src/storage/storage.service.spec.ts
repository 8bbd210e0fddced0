import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { AppConfig, StorageSettings } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { ConfigError } from '../config/env.schema';
import { providerDownload } from '../providers/provider-http';
import { ProviderError } from '../providers/provider.port';
import { OutputUrlGuard } from '../security/url-guard';
import { keyFromParam, verifyFileRequest } from './files.controller';
import { LocalStorageBackend, signFileKey } from './local-storage.backend';
import { S3StorageBackend } from './s3-storage.backend';
import { S3_TEST_KEYS, S3TestServer, startS3Server } from '../../test/support/s3-server';
import { isValidKey, outputPrefix } from './storage.backend';
import { createStorageBackend, StorageModule } from './storage.module';
import { dedupeFilename, sanitizeFilename, StorageService } from './storage.service';

const SECRET = 'storage-test-secret-0123456789abcdef';
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A loopback HTTP server answering with `handler`; records every request. */
async function serve(
  handler: (req: Received) => { status?: number; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ server: Server; base: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      received.push(r);
      const out = handler(r);
      res.writeHead(out.status ?? 200, out.headers ?? {});
      res.end(out.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function parseSigned(url: string): { key: string; expires: string; sig: string } {
  const parsed = new URL(url, 'http://placeholder');
  return {
    key: parsed.pathname.replace(/^\/files\//, ''),
    expires: parsed.searchParams.get('expires')!,
    sig: parsed.searchParams.get('sig')!,
  };
}

describe('StorageService (local backend)', () => {
  let dir: string;
  let backend: LocalStorageBackend;
  let storage: StorageService;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-spec-'));
    backend = new LocalStorageBackend({ dir, secret: SECRET, ttlSeconds: 3600, publicBaseUrl: '' });
    storage = new StorageService(backend, new OutputUrlGuard(true));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes an artifact given as bytes, with its hash, size, type and a signed URL', async () => {
    const [file] = await storage.saveArtifacts('task-1', [
      { contentType: 'image/png', data: PNG, filename: 'cat.png' },
    ]);
    expect(file).toMatchObject({
      key: 'tasks/task-1/cat.png',
      content_type: 'image/png',
      size_bytes: PNG.length,
      filename: 'cat.png',
      sha256: sha256(PNG),
    });
    expect(file.url).toMatch(/^\/files\/tasks\/task-1\/cat\.png\?expires=\d+&sig=[A-Za-z0-9_-]{43}$/);
    expect(await readFile(join(dir, 'tasks', 'task-1', 'cat.png'))).toEqual(PNG);
    // Atomic writes leave no temp files behind; the extension says image/png, so no sidecar either.
    expect((await readdir(join(dir, 'tasks', 'task-1'))).sort()).toEqual(['cat.png']);

    const read = await storage.read(file.key);
    expect(read.size).toBe(PNG.length);
    expect(read.contentType).toBe('image/png');
    expect(await drain(read.stream)).toEqual(PNG);
  });

  it('downloads an artifact given as a URL, naming it from the URL and typing it from the answer', async () => {
    const body = Buffer.from('RIFF....WEBPVP8 fake image bytes');
    const { server, base, received } = await serve(() => ({ headers: { 'content-type': 'image/webp' }, body }));
    try {
      const [file] = await storage.saveArtifacts(
        'task-2',
        [{ contentType: 'application/octet-stream', url: `${base}/out/abc%20def.webp?token=secret` }],
        { prefix: 'outputs/v1' },
      );
      expect(received[0].url).toBe('/out/abc%20def.webp?token=secret');
      expect(file).toMatchObject({
        key: 'outputs/v1/task-2/abc_def.webp',
        content_type: 'image/webp',
        size_bytes: body.length,
        sha256: sha256(body),
      });
      expect(await readFile(join(dir, 'outputs', 'v1', 'task-2', 'abc_def.webp'))).toEqual(body);
    } finally {
      await close(server);
    }
  });

  it('streams an output of untold type and size into storage, typed from its first chunk', async () => {
    // Chunked, no type, no extension: only the bytes say it is a PNG; big enough to go through the stream.
    const body = Buffer.concat([PNG, Buffer.alloc(3 * 1024 * 1024, 1)]);
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' });
      res.write(body.subarray(0, 100));
      setTimeout(() => res.end(body.subarray(100)), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/result`;
      const [file] = await storage.saveArtifacts('task-3', [{ contentType: 'application/octet-stream', url }]);
      expect(file).toMatchObject({
        key: 'tasks/task-3/result.png',
        content_type: 'image/png',
        size_bytes: body.length,
        sha256: sha256(body),
      });
      expect(sha256(await readFile(join(dir, 'tasks', 'task-3', 'result.png')))).toBe(sha256(body));
      // Renamed into place once whole: no temp file left beside it.
      expect(await readdir(join(dir, 'tasks', 'task-3'))).toEqual(['result.png']);
    } finally {
      await close(server);
    }
  });

  it('cuts a streamed output off at its size cap, leaving nothing stored', async () => {
    const { server, base } = await serve(() => ({ body: Buffer.alloc(3 * 1024 * 1024, 1) }));
    try {
      const err = await providerDownload(
        'output download',
        { url: `${base}/big.bin`, timeoutMs: 10_000, maxBytes: 1024 * 1024 },
        { sink: (body) => backend.putStream('tasks/task-4/big.bin', body, 'video/mp4') },
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'provider_bad_response', retryable: false });
      expect(await readdir(join(dir, 'tasks', 'task-4'))).toEqual([]);
    } finally {
      await close(server);
    }
  });

  it('fetches provider outputs through the output guard: private addresses only at a trusted provider origin', async () => {
    const provider = await serve(() => ({ headers: { 'content-type': 'image/png' }, body: PNG }));
    const inside = await serve(() => ({ body: 'internal' }));
    const guard = new OutputUrlGuard(false, { trustedOrigins: [`${provider.base}/v1`] });
    try {
      const guarded = new StorageService(backend, guard);
      const [file] = await guarded.saveArtifacts('g1', [{ contentType: 'image/png', url: `${provider.base}/a.png` }]);
      expect(file).toMatchObject({ size_bytes: PNG.length, sha256: sha256(PNG) });
      const port = new URL(inside.base).port;
      for (const url of [
        `${inside.base}/admin?token=provider-token`,
        `http://localhost:${port}/admin?token=provider-token`,
        `http://[::ffff:127.0.0.1]:${port}/admin?token=provider-token`,
        'file:///etc/passwd',
      ]) {
        const err = (await guarded
          .saveArtifacts('g2', [{ contentType: 'image/png', url }])
          .catch((e: unknown) => e)) as ProviderError;
        expect(err).toBeInstanceOf(ProviderError);
        expect(err).toMatchObject({ code: 'provider_bad_response', retryable: false });
        expect(err.message).toMatch(/^a provider output URL was refused: /);
        expect(err.message).not.toContain('provider-token');
      }
      expect(inside.received).toHaveLength(0);
    } finally {
      await guard.close();
      await close(provider.server);
      await close(inside.server);
    }
  });

  it('turns a failed download into a classified ProviderError without the (token-bearing) URL', async () => {
    let status = 404;
    const { server, base } = await serve(() => ({ status, body: 'gone' }));
    try {
      const artifact = { contentType: 'video/mp4', url: `${base}/v.mp4?sig=provider-token` };
      const gone = await storage.saveArtifacts('task-3', [artifact]).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(ProviderError);
      expect((gone as ProviderError).retryable).toBe(false);
      expect((gone as Error).message).not.toContain('provider-token');
      status = 503;
      const down = await storage.saveArtifacts('task-3', [artifact]).catch((e: unknown) => e);
      expect((down as ProviderError).retryable).toBe(true);
    } finally {
      await close(server);
    }
  });

  it('sanitizes and dedupes file names, keeping every file inside the storage directory', async () => {
    const data = Buffer.from('x');
    const files = await storage.saveArtifacts('task-4', [
      { contentType: 'image/png', data, filename: '../../etc/passwd' },
      { contentType: 'image/png', data, filename: 'my photo (1).png' },
      { contentType: 'image/png', data, filename: 'Image.png' },
      { contentType: 'image/png', data, filename: 'image.png' },
      { contentType: 'image/png', data, filename: 'image.png' },
      { contentType: 'image/png', data, filename: '.hidden' },
      { contentType: 'image/png', data, filename: 'C:\\temp\\..\\x.png' },
      { contentType: 'application/json', data, filename: 'cat.png.meta.json' },
      { contentType: 'audio/mpeg', data },
      { contentType: 'text/html', data, filename: '../..' },
    ]);
    expect(files.map((f) => f.filename)).toEqual([
      'passwd.png',
      'my_photo_1_.png',
      'Image.png',
      'image-2.png',
      'image-3.png',
      'hidden.png',
      'x.png',
      'cat.png-meta.json',
      'output-9.mp3',
      'output-10',
    ]);
    for (const f of files) expect(f.key).toBe(`tasks/task-4/${f.filename}`);
    expect((await readdir(dir)).sort()).toEqual(['tasks']);
  });

  it('takes an output folder only when every key under it is one storage takes', () => {
    expect([outputPrefix(), outputPrefix('campaign/2026'), outputPrefix('campaign/2026/')]).toEqual([
      'tasks',
      'tasks/campaign/2026',
      'tasks/campaign/2026',
    ]);
    for (const folder of ['', 'a//b', '.hidden', 'a/./b', 'a/..', '/abs', 'a b', 'a\\b', 'x'.repeat(201)]) {
      expect([folder, outputPrefix(folder)]).toEqual([folder, null]);
    }
    // Room is left for the task id and the longest file name.
    const deep = Array.from({ length: 5 }, () => 'f'.repeat(200)).join('/');
    expect(outputPrefix(deep)).toBeNull();
    expect(isValidKey(`tasks/${deep}`)).toBe(true);
  });

  it('shortens long names but keeps the extension', () => {
    const name = sanitizeFilename(`${'a'.repeat(300)}.webm`, 0, 'video/webm');
    expect(name).toHaveLength(100);
    expect(name.endsWith('.webm')).toBe(true);
    const used = new Set<string>();
    expect([dedupeFilename('a.tar.gz', used), dedupeFilename('A.TAR.GZ', used)]).toEqual(['a.tar.gz', 'A.TAR-2.GZ']);
  });

  it('refuses unsafe task ids and prefixes, and stops on an aborted signal', async () => {
    const artifact = { contentType: 'image/png', data: PNG };
    await expect(storage.saveArtifacts('../x', [artifact])).rejects.toThrow('not a safe key segment');
    await expect(storage.saveArtifacts('a/b', [artifact])).rejects.toThrow('not a safe key segment');
    await expect(storage.saveArtifacts('t', [artifact], { prefix: '/abs' })).rejects.toThrow('not a safe key segment');
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(storage.saveArtifacts('t', [artifact], { signal: controller.signal })).rejects.toThrow('cancelled');
    expect(await readdir(dir)).toEqual([]);
  });

  it('answers not_found for missing files, sidecars and unsafe keys', async () => {
    await storage.saveArtifacts('t5', [{ contentType: 'image/png', data: PNG, filename: 'a.png' }]);
    for (const key of [
      'tasks/t5/missing.png',
      'tasks/t5/a.png.meta.json',
      'tasks/t5',
      '../etc/passwd',
      '/etc/passwd',
    ]) {
      await expect(storage.read(key)).rejects.toMatchObject({ code: 'not_found' });
    }
  });

  it('keeps a sidecar only when the extension does not say the type, and reads the type back either way', async () => {
    await storage.saveArtifacts('t6', [
      { contentType: 'audio/mpeg', data: PNG, filename: 'a.mp3' },
      { contentType: 'audio/wav', data: PNG, filename: 'b.mp3' },
    ]);
    expect((await readdir(join(dir, 'tasks', 't6'))).sort()).toEqual(['a.mp3', 'b.mp3', 'b.mp3.meta.json']);
    const a = await storage.read('tasks/t6/a.mp3');
    const b = await storage.read('tasks/t6/b.mp3');
    a.stream.destroy();
    b.stream.destroy();
    expect([a.contentType, b.contentType]).toEqual(['audio/mpeg', 'audio/wav']);
    await rm(join(dir, 'tasks', 't6', 'b.mp3.meta.json'));
    const fallback = await storage.read('tasks/t6/b.mp3');
    fallback.stream.destroy();
    expect(fallback.contentType).toBe('audio/mpeg');
  });

  it('replaces the file of an earlier attempt atomically and drops its stale sidecar, for small and large files', async () => {
    const large = Buffer.alloc(200 * 1024, 7);
    for (const data of [PNG, large]) {
      await rm(join(dir, 'tasks'), { recursive: true, force: true });
      await storage.saveArtifacts('t7', [{ contentType: 'audio/wav', data: Buffer.from('old'), filename: 'a.mp3' }]);
      expect((await readdir(join(dir, 'tasks', 't7'))).sort()).toEqual(['a.mp3', 'a.mp3.meta.json']);
      const [file] = await storage.saveArtifacts('t7', [{ contentType: 'audio/mpeg', data, filename: 'a.mp3' }]);
      expect(file.size_bytes).toBe(data.length);
      expect((await readdir(join(dir, 'tasks', 't7'))).sort()).toEqual(['a.mp3']);
      expect(await readFile(join(dir, 'tasks', 't7', 'a.mp3'))).toEqual(data);
      const read = await storage.read(file.key);
      read.stream.destroy();
      expect(read.contentType).toBe('audio/mpeg');
    }
    const [fresh] = await storage.saveArtifacts('t8', [{ contentType: 'audio/wav', data: large, filename: 'b.mp3' }]);
    expect((await readdir(join(dir, 'tasks', 't8'))).sort()).toEqual(['b.mp3', 'b.mp3.meta.json']);
    expect(fresh.sha256).toBe(sha256(large));
  });

  it('puts a file by copying it, or by moving it when it is given away, atomically and with its sidecar', async () => {
    const source = join(dir, 'made.bin');
    await writeFile(source, PNG);
    const body = { file: source, size: PNG.length, sha256: sha256(PNG) };
    await backend.put('tasks/f1/a.mp3', body, 'audio/wav');
    expect(await readFile(source)).toEqual(PNG); // copied: the caller's file stays
    await backend.put('tasks/f1/a.mp3', { ...body, move: true }, 'audio/mpeg'); // replaces the first
    await expect(readFile(source)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(join(dir, 'tasks', 'f1'))).sort()).toEqual(['a.mp3']);
    const read = await storage.read('tasks/f1/a.mp3');
    expect([read.contentType, await drain(read.stream)]).toEqual(['audio/mpeg', PNG]);
  });

  it('copies an earlier task’s files under a new task id, sidecars included, and answers null when one is gone', async () => {
    const earlier = await storage.saveArtifacts('t9', [
      { contentType: 'image/png', data: PNG, filename: 'a.png' },
      { contentType: 'audio/wav', data: PNG, filename: 'b.mp3' },
    ]);
    const copies = await storage.copyFiles(earlier, 't10', { prefix: 'tasks/campaign' });
    expect(copies!.map((f) => f.key)).toEqual(['tasks/campaign/t10/a.png', 'tasks/campaign/t10/b.mp3']);
    expect(copies!.map((f) => [f.filename, f.sha256, f.size_bytes])).toEqual(
      earlier.map((f) => [f.filename, f.sha256, f.size_bytes]),
    );
    const b = await storage.read(copies![1].key);
    expect([b.contentType, await drain(b.stream)]).toEqual(['audio/wav', PNG]);
    expect(copies![0].url).toContain('/files/tasks/campaign/t10/a.png?');

    await rm(join(dir, 'tasks', 't9', 'b.mp3'));
    expect(await storage.copyFiles(earlier, 't11')).toBeNull();
  });

  it('prefixes URLs with PUBLIC_BASE_URL when set', () => {
    const absolute = new LocalStorageBackend({
      dir,
      secret: SECRET,
      ttlSeconds: 60,
      publicBaseUrl: 'https://media.example.com',
    });
    expect(absolute.signedUrlNow('tasks/t/a.png', 1_700_000_000_000)).toBe(
      `https://media.example.com/files/tasks/t/a.png?expires=1700000060&sig=${signFileKey(SECRET, 'tasks/t/a.png', 1700000060)}`,
    );
  });
});

describe('signed file URLs', () => {
  const backend = new LocalStorageBackend({ dir: '/unused', secret: SECRET, ttlSeconds: 600, publicBaseUrl: '' });
  const now = 1_700_000_000_000;

  it('signs base64url HMAC-SHA256(secret, key + "\\n" + expires)', () => {
    const expected = createHmac('sha256', SECRET).update('tasks/t/a.png\n1700000600').digest('base64url');
    expect(parseSigned(backend.signedUrlNow('tasks/t/a.png', now)).sig).toBe(expected);
  });

  it('accepts a valid link and reports the remaining lifetime', () => {
    const { key, expires, sig } = parseSigned(backend.signedUrlNow('tasks/t/a.png', now));
    expect(verifyFileRequest(key, expires, sig, SECRET, now + 100_000)).toEqual({ ok: true, maxAgeSeconds: 500 });
  });

  it('refuses an expired link', () => {
    const { key, expires, sig } = parseSigned(backend.signedUrlNow('tasks/t/a.png', now));
    expect(verifyFileRequest(key, expires, sig, SECRET, now + 601_000)).toEqual({
      ok: false,
      status: 403,
      message: 'link expired',
    });
  });

  it('refuses tampered links', () => {
    const { key, expires, sig } = parseSigned(backend.signedUrlNow('tasks/t/a.png', now));
    const bad = { ok: false, status: 403, message: 'bad signature' };
    expect(verifyFileRequest('tasks/t/b.png', expires, sig, SECRET, now)).toEqual(bad);
    expect(verifyFileRequest(key, String(Number(expires) + 3600), sig, SECRET, now)).toEqual(bad);
    expect(verifyFileRequest(key, expires, sig.slice(0, -1) + (sig.endsWith('A') ? 'B' : 'A'), SECRET, now)).toEqual(
      bad,
    );
    expect(verifyFileRequest(key, expires, `${sig}=`, SECRET, now)).toEqual(bad);
    expect(verifyFileRequest(key, expires, sig, 'another-secret', now)).toEqual(bad);
    expect(verifyFileRequest(key, undefined, sig, SECRET, now)).toEqual(bad);
    expect(verifyFileRequest(key, expires, [sig, sig], SECRET, now)).toEqual(bad);
    expect(verifyFileRequest(key, '-1', sig, SECRET, now)).toEqual(bad);
  });

  it('answers 404 for traversal and absolute keys before looking at the signature', () => {
    for (const key of ['../secret', 'tasks/../../etc/passwd', '/etc/passwd', 'tasks//a', '', 'tasks/.a.png.tmp']) {
      const expires = String(now / 1000 + 60);
      expect(verifyFileRequest(key, expires, signFileKey(SECRET, key, expires), SECRET, now)).toMatchObject({
        ok: false,
        status: 404,
      });
    }
  });

  it('reads the wildcard parameter as a string or as segments', () => {
    expect(keyFromParam('tasks/t/a.png')).toBe('tasks/t/a.png');
    expect(keyFromParam(['tasks', 't', 'a.png'])).toBe('tasks/t/a.png');
    expect(keyFromParam(undefined)).toBe('');
  });
});

describe('S3StorageBackend (an S3-compatible server on loopback)', () => {
  let s3: S3TestServer;
  const settings = (endpoint: string, more: Partial<StorageSettings['s3']> = {}): StorageSettings['s3'] => ({
    endpoint,
    region: 'us-east-1',
    bucket: s3.bucket,
    ...S3_TEST_KEYS,
    forcePathStyle: true,
    ...more,
  });

  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(() => s3.close());

  it('stores bytes, files and streams, reads them back, copies and deletes them', async () => {
    const backend = new S3StorageBackend(settings(s3.endpoint), 900);
    const storage = new StorageService(backend, new OutputUrlGuard(true));
    const [file] = await storage.saveArtifacts('t1', [{ contentType: 'image/png', data: PNG, filename: 'a b.png' }]);
    expect(file).toMatchObject({ key: 'tasks/t1/a_b.png', size_bytes: PNG.length, sha256: sha256(PNG) });
    const read = await storage.open(file.key);
    expect(read).toMatchObject({ size: PNG.length, contentType: 'image/png' });
    expect(await drain(read!.stream)).toEqual(PNG);

    const big = Buffer.alloc(20 * 1024 * 1024 + 5, 7); // past one part: a multipart upload
    await backend.putStream(
      'tasks/t1/big.bin',
      Readable.from([big.subarray(0, 1000), big.subarray(1000)]),
      'video/mp4',
    );
    const back = await storage.open('tasks/t1/big.bin');
    expect(back).toMatchObject({ size: big.length, contentType: 'video/mp4' });
    expect(sha256(await drain(back!.stream))).toBe(sha256(big));

    expect(await backend.copy('tasks/t1/a_b.png', 'tasks/t2/a_b.png')).toBe(true);
    expect(await backend.copy('tasks/t1/none.png', 'tasks/t2/none.png')).toBe(false);
    expect(await drain((await storage.open('tasks/t2/a_b.png'))!.stream)).toEqual(PNG);

    await storage.delete('tasks/t1/a_b.png');
    await storage.delete('tasks/t1/a_b.png'); // already gone: nothing to do
    expect(await storage.open('tasks/t1/a_b.png')).toBeNull();
  });

  it('signs links on S3_PUBLIC_ENDPOINT when set, which open the object', async () => {
    const inside = new S3StorageBackend(settings(s3.endpoint), 900);
    await inside.put('tasks/t3/a.png', { data: PNG, size: PNG.length, sha256: sha256(PNG) }, 'image/png');
    const link = await inside.signedUrl('tasks/t3/a.png');
    expect(link).toMatch(new RegExp(`^${s3.endpoint}/${s3.bucket}/tasks/t3/a.png\\?.*X-Amz-Expires=900`));
    const res = await fetch(link);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG);

    // The API reaches storage at one address, clients at another: only the links change.
    const publicEndpoint = s3.endpoint.replace('127.0.0.1', 'localhost');
    const split = new S3StorageBackend(settings('http://127.0.0.1:9', { publicEndpoint }), 900);
    const publicLink = await split.signedUrl('tasks/t3/a.png');
    expect(publicLink.startsWith(`${publicEndpoint}/${s3.bucket}/tasks/t3/a.png?`)).toBe(true);
    expect((await fetch(publicLink)).status).toBe(200);

    const hosted = new S3StorageBackend(
      settings('https://s3.eu-west-1.amazonaws.com', { forcePathStyle: false, region: 'eu-west-1' }),
      60,
    );
    expect(await hosted.signedUrl('tasks/t/a.png')).toMatch(
      /^https:\/\/media\.s3\.eu-west-1\.amazonaws\.com\/tasks\/t\/a\.png\?/,
    );
  });

  it('finds credentials through the default chain when no keys are configured', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = S3_TEST_KEYS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_TEST_KEYS.secretAccessKey;
    try {
      const backend = new S3StorageBackend(settings(s3.endpoint, { accessKeyId: '', secretAccessKey: '' }), 900);
      await backend.put('tasks/t4/a.png', { data: PNG, size: PNG.length, sha256: sha256(PNG) }, 'image/png');
      expect(await drain((await backend.open('tasks/t4/a.png'))!.stream)).toEqual(PNG);
      expect(await backend.signedUrl('tasks/t4/a.png')).toContain(`X-Amz-Credential=${S3_TEST_KEYS.accessKeyId}%2F`);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('reports refusals and an unreachable server as transient storage failures', async () => {
    const noBucket = new S3StorageBackend(settings(s3.endpoint, { bucket: 'no-such-bucket' }), 900);
    await expect(
      noBucket.put('tasks/t5/a.png', { data: PNG, size: PNG.length, sha256: sha256(PNG) }, 'image/png'),
    ).rejects.toMatchObject({
      code: 'storage_unavailable',
      retryable: true,
      message: 'output storage answered 404 (NoSuchBucket) to a PUT',
    });
    const { server, base } = await serve(() => ({}));
    await close(server);
    const storage = new StorageService(new S3StorageBackend(settings(base), 900), new OutputUrlGuard(true));
    await expect(storage.saveArtifacts('t1', [{ contentType: 'image/png', data: PNG }])).rejects.toMatchObject({
      code: 'storage_unavailable',
      retryable: true,
    });
  }, 30_000);
});

describe('storage configuration', () => {
  it('defaults to the local backend with a secret derived from JWT_SECRET', () => {
    const config = AppConfig.fromEnv({ JWT_SECRET: SECRET });
    const storage = config.storage;
    expect(storage).toMatchObject({
      backend: 'local',
      localDir: './data/outputs',
      publicBaseUrl: '',
      urlTtlSeconds: 86400,
      signingSecret: createHmac('sha256', 'storage').update(SECRET).digest('base64url'),
    });
    expect(storage.s3).toMatchObject({ region: 'us-east-1', forcePathStyle: true });
    expect(createStorageBackend(storage).kind).toBe('local');
  });

  it('requires the bucket and keys for OUTPUT_STORAGE=s3, without echoing secrets', () => {
    let problems: string[] = [];
    try {
      AppConfig.fromEnv({ OUTPUT_STORAGE: 's3', STORAGE_SIGNING_SECRET: 'too-short-secret' });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    const names = problems.map((p) => p.split(':')[0]).sort();
    expect(names).toEqual(['S3_BUCKET', 'STORAGE_SIGNING_SECRET']);
    // Keys are optional (the SDK's chain finds them), but one without the other is a mistake.
    expect(() => AppConfig.fromEnv({ OUTPUT_STORAGE: 's3', S3_BUCKET: 'media', S3_ACCESS_KEY_ID: 'id' })).toThrow(
      'S3_SECRET_ACCESS_KEY is required when S3_ACCESS_KEY_ID is set',
    );
    expect(problems.join()).not.toContain('too-short-secret');
  });

  it('reads the S3 settings', () => {
    const config = AppConfig.fromEnv({
      OUTPUT_STORAGE: 's3',
      S3_ENDPOINT: 'http://minio:9000/',
      S3_BUCKET: 'media-out',
      S3_ACCESS_KEY_ID: 'minio',
      S3_SECRET_ACCESS_KEY: 'minio-secret',
      S3_FORCE_PATH_STYLE: 'false',
      S3_PUBLIC_ENDPOINT: 'https://files.example.com/',
      PUBLIC_BASE_URL: 'https://media.example.com/',
      FILE_URL_TTL: '3600',
    });
    expect(config.storage).toMatchObject({
      backend: 's3',
      publicBaseUrl: 'https://media.example.com',
      urlTtlSeconds: 3600,
      s3: {
        endpoint: 'http://minio:9000',
        publicEndpoint: 'https://files.example.com',
        bucket: 'media-out',
        forcePathStyle: false,
      },
    });
    expect(createStorageBackend(config.storage).kind).toBe('s3');
    expect(() => AppConfig.fromEnv({ FILE_URL_TTL: '999999' })).toThrow('FILE_URL_TTL');
    expect(() => AppConfig.fromEnv({ PUBLIC_BASE_URL: 'media.example.com' })).toThrow('PUBLIC_BASE_URL');
    expect(() => AppConfig.fromEnv({ S3_PUBLIC_ENDPOINT: 'files.example.com' })).toThrow('S3_PUBLIC_ENDPOINT');
  });
});

describe('GET /files/* (StorageModule on Fastify)', () => {
  let dir: string;
  let app: NestFastifyApplication;
  let storage: StorageService;
  let secret: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-http-'));
    const config = AppConfig.fromEnv({ JWT_SECRET: SECRET, STORAGE_DIR: dir, FILE_URL_TTL: '600' });
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config), StorageModule],
    }).compile();
    secret = config.storage.signingSecret;
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    app.useGlobalFilters(new HttpExceptionFilter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    storage = app.get(StorageService);
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (url: string) => app.getHttpAdapter().getInstance().inject({ method: 'GET', url });

  it('streams a file through its signed URL', async () => {
    const [file] = await storage.saveArtifacts('h1', [{ contentType: 'image/png', data: PNG, filename: 'a.png' }]);
    const res = await get(file.url);
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload).toEqual(PNG);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['content-length']).toBe(String(PNG.length));
    expect(res.headers['cache-control']).toMatch(/^private, max-age=(599|600)$/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-disposition']).toBeUndefined();
  });

  it('sends risky types as attachments', async () => {
    const [file] = await storage.saveArtifacts('h2', [{ contentType: 'text/html', data: Buffer.from('<script>') }]);
    const res = await get(file.url);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe('attachment');
  });

  it('answers 403 for expired and tampered links, 404 for traversal, 410 for a signed file that is gone', async () => {
    const [file] = await storage.saveArtifacts('h3', [{ contentType: 'image/png', data: PNG, filename: 'a.png' }]);
    const { key, expires, sig } = parseSigned(file.url);
    const past = Math.floor(Date.now() / 1000) - 10;
    const expired = await get(`/files/${key}?expires=${past}&sig=${signFileKey(secret, key, past)}`);
    expect(expired.statusCode).toBe(403);
    expect(expired.json()).toMatchObject({ statusCode: 403, code: 'forbidden', message: 'link expired' });
    const tampered = await get(`/files/${key}?expires=${Number(expires) + 1}&sig=${sig}`);
    expect(tampered.json()).toMatchObject({ statusCode: 403, code: 'forbidden', message: 'bad signature' });
    expect((await get(`/files/${key}`)).statusCode).toBe(403);

    await writeFile(join(dir, 'outside.txt'), 'secret');
    const escape = 'tasks/../outside.txt';
    const traversal = await get(
      `/files/tasks/..%2Foutside.txt?expires=${expires}&sig=${signFileKey(secret, escape, expires)}`,
    );
    expect(traversal.statusCode).toBe(404);
    expect(traversal.json()).toMatchObject({ code: 'not_found' });

    // A link we signed names a file that existed: deleted since (retention, a deleted upload), it is gone.
    await storage.delete(key);
    const gone = await get(`/files/${key}?expires=${expires}&sig=${sig}`);
    expect(gone.statusCode).toBe(410);
    expect(gone.json()).toMatchObject({ statusCode: 410, code: 'gone', message: 'file expired or deleted' });
  });
});
