import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UrlGuard } from '../security/url-guard';
import { downloadMedia } from './media-download';
import { Readable } from 'node:stream';
import { ProviderError } from './provider.port';
import { StoredMedia } from './stored-media';

describe('downloadMedia', () => {
  let server: Server;
  let base: string;
  let hits = 0;
  let dir: string;
  const guard = new UrlGuard(true);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'audio/mpeg' }).end('ID3 not really an mp3');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = await mkdtemp(join(tmpdir(), 'media-download-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await guard.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('writes the body to the file given, naming it from the URL’s last segment, decoded', async () => {
    const file = join(dir, 'song');
    const media = await downloadMedia(`${base}/a/my%20song.mp3?x=1`, file, { guard, maxBytes: 1024, timeoutMs: 5000 });
    expect(media).toEqual({ file, size: 21, filename: 'my song.mp3', contentType: 'audio/mpeg' });
    expect(await readFile(file, 'utf8')).toBe('ID3 not really an mp3');
  });

  it('stops at the size cap, counted as the bytes arrive, and leaves no partial file', async () => {
    const file = join(dir, 'capped');
    const err = (await downloadMedia(`${base}/big.mp3`, file, { guard, maxBytes: 10, timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    )) as ProviderError;
    expect(err).toMatchObject({ code: 'input_too_large', retryable: false });
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails a URL with a malformed percent-encoding as input_invalid (permanent), without fetching it', async () => {
    hits = 0;
    for (const path of ['/clip%E0%A4%A.mp3', '/%zz.mp3', '/a%']) {
      const err = (await downloadMedia(`${base}${path}`, join(dir, 'x'), {
        guard,
        maxBytes: 1024,
        timeoutMs: 5000,
      }).catch((e: unknown) => e)) as ProviderError;
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: 'input_invalid', retryable: false });
      expect(err.message).toContain('percent-encoding');
    }
    expect(hits).toBe(0);
  });

  it('writes an inline data: URL without fetching anything, and holds its size cap', async () => {
    hits = 0;
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const got = await downloadMedia(`data:image/png;base64,${png.toString('base64')}`, join(dir, 'inline'), {
      guard,
      maxBytes: 1024,
      timeoutMs: 5000,
    });
    expect(got).toMatchObject({ size: png.length, contentType: 'image/png', filename: 'inline.png' });
    expect(await readFile(join(dir, 'inline'))).toEqual(png);
    const big = `data:image/png;base64,${Buffer.alloc(2048).toString('base64')}`;
    const err = await downloadMedia(big, join(dir, 'big'), { guard, maxBytes: 1024, timeoutMs: 5000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'input_too_large', retryable: false });
    expect(hits).toBe(0);
  });

  describe('upload: references', () => {
    const ID = '0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10';
    const bytes = Buffer.from('fLaC and then some audio');
    /** Storage holding one upload, its bytes streamed in small chunks; `size` as the backend reports it. */
    const uploads = (size = bytes.length): StoredMedia => ({
      open: (id: string) =>
        Promise.resolve(
          id === ID
            ? { stream: Readable.from([bytes.subarray(0, 4), bytes.subarray(4)]), size, contentType: 'audio/flac' }
            : null,
        ),
      link: () => Promise.reject(new Error('not used')),
      canLink: () => false,
    });

    it('reads the stored bytes into the file without fetching anything, typed and named by the upload', async () => {
      hits = 0;
      const got = await downloadMedia(`upload:${ID}`, join(dir, 'upload'), {
        guard,
        maxBytes: 1024,
        timeoutMs: 5000,
        uploads: uploads(),
      });
      expect(got).toMatchObject({ size: bytes.length, contentType: 'audio/flac', filename: 'upload.flac' });
      expect(await readFile(join(dir, 'upload'))).toEqual(bytes);
      expect(hits).toBe(0);
    });

    it('holds the size cap, also when the backend does not know the size ahead', async () => {
      for (const announced of [bytes.length, 0]) {
        const err = await downloadMedia(`upload:${ID}`, join(dir, `capped-${announced}`), {
          guard,
          maxBytes: 8,
          timeoutMs: 5000,
          uploads: uploads(announced),
        }).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'input_too_large', retryable: false });
      }
    });

    it('fails permanently for an upload that is gone, or where uploads cannot be read', async () => {
      const gone = await downloadMedia('upload:11111111-2222-4333-8444-555555555555', join(dir, 'gone'), {
        guard,
        maxBytes: 1024,
        timeoutMs: 5000,
        uploads: uploads(),
      }).catch((e: unknown) => e);
      expect(gone).toMatchObject({ code: 'input_unreachable', retryable: false });
      expect((gone as Error).message).toContain('expired or was deleted');
      const unread = await downloadMedia(`upload:${ID}`, join(dir, 'unread'), {
        guard,
        maxBytes: 1024,
        timeoutMs: 5000,
      }).catch((e: unknown) => e);
      expect(unread).toBeInstanceOf(ProviderError);
      expect(unread).toMatchObject({ code: 'input_unreachable', retryable: false });
    });
  });
});
