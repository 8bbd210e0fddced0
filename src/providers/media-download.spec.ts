import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { UrlGuard } from '../security/url-guard';
import { downloadMedia } from './media-download';
import { ProviderError } from './provider.port';

describe('downloadMedia', () => {
  let server: Server;
  let base: string;
  let hits = 0;
  const guard = new UrlGuard(true);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'audio/mpeg' }).end('ID3 not really an mp3');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await guard.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('names the file from the URL’s last segment, decoded', async () => {
    const media = await downloadMedia(`${base}/a/my%20song.mp3?x=1`, { guard, maxBytes: 1024, timeoutMs: 5000 });
    expect(media).toMatchObject({ filename: 'my song.mp3', contentType: 'audio/mpeg' });
  });

  it('fails a URL with a malformed percent-encoding as input_invalid (permanent), without fetching it', async () => {
    hits = 0;
    for (const path of ['/clip%E0%A4%A.mp3', '/%zz.mp3', '/a%']) {
      const err = (await downloadMedia(`${base}${path}`, { guard, maxBytes: 1024, timeoutMs: 5000 }).catch(
        (e: unknown) => e,
      )) as ProviderError;
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: 'input_invalid', retryable: false });
      expect(err.message).toContain('percent-encoding');
    }
    expect(hits).toBe(0);
  });
});
