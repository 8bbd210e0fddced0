import { getEventListeners } from 'node:events';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { providerDownload, providerRequest } from './provider-http';
import { ProviderError, ProviderErrorCode } from './provider.port';

describe('providerRequest and providerDownload', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/silent') return; // never answers
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('answers, and leaves no listener on the task signal once the exchange is over', async () => {
    const task = new AbortController();
    const res = await providerRequest('p', { method: 'GET', url: `${base}/ok`, timeoutMs: 5000, signal: task.signal });
    expect(res.json()).toEqual({ ok: true });
    const file = await providerDownload(
      'p',
      { url: `${base}/ok`, timeoutMs: 5000, signal: task.signal },
      {
        inMemoryUpTo: 1024,
      },
    );
    expect(file.data?.toString()).toBe('{"ok":true}');
    expect(getEventListeners(task.signal, 'abort')).toHaveLength(0);
  });

  it('fails a call past its deadline as a transient provider_timeout', async () => {
    const task = new AbortController();
    const started = Date.now();
    const err = await providerRequest('slowco', {
      method: 'GET',
      url: `${base}/silent`,
      timeoutMs: 150,
      signal: task.signal,
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    expect((err as Error).message).toBe('slowco did not answer within 150 ms');
    const download = await providerDownload('slowco', { url: `${base}/silent`, timeoutMs: 150 }, {}).catch(
      (e: unknown) => e,
    );
    expect(download).toMatchObject({ code: ProviderErrorCode.Timeout });
    expect(getEventListeners(task.signal, 'abort')).toHaveLength(0);
  });

  it("stops at once when the task's signal aborts, with the task's reason, not as a timeout", async () => {
    const task = new AbortController();
    const call = providerRequest('p', { method: 'GET', url: `${base}/silent`, timeoutMs: 10_000, signal: task.signal });
    setTimeout(() => task.abort(new Error('cancelled')), 50);
    const started = Date.now();
    const err = await call.catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err).not.toBeInstanceOf(ProviderError);
    expect(task.signal.aborted).toBe(true);
    // A signal already aborted stops the call before it is sent.
    const again = await providerRequest('p', { method: 'GET', url: `${base}/ok`, timeoutMs: 5000, signal: task.signal })
      .then(() => 'answered')
      .catch(() => 'stopped');
    expect(again).toBe('stopped');
  });
});
