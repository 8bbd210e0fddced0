import { Logger } from '@nestjs/common';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { UrlGuard } from '../../security/url-guard';
import type { FlowContext } from '../expressions';
import type { HttpStep, StepRun } from '../flow-step.types';
import { HTTP_STEP_MAX_RESPONSE_BYTES, HttpStepExecutor } from './http-step.executor';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Answer = (req: Seen, res: ServerResponse) => void;

describe('HttpStepExecutor', () => {
  let server: Server;
  let base: string;
  let seen: Seen[];
  let answer: Answer;
  const loopbackGuard = new UrlGuard(true);
  const strictGuard = new UrlGuard(false);
  const executor = new HttpStepExecutor(loopbackGuard);

  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s = { method: req.method!, path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
        seen.push(s);
        answer(s, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    seen = [];
    answer = (_req, res) => void res.writeHead(204).end();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await loopbackGuard.close();
    await strictGuard.close();
  });

  const context: FlowContext = {
    trigger: { user: { id: 42, name: 'Ada' }, token: 's3cr3t-token' },
    steps: { prev: { status: 'completed', output: { items: [1, 2, 3] } } },
    run: { id: 'run-1', flow_id: 'flow-1', version: 3 },
  };

  function run(step: Partial<HttpStep>, signal = new AbortController().signal): StepRun<HttpStep> {
    return {
      runId: 'run-1',
      flowId: 'flow-1',
      userId: 'alice',
      step: { id: 'call', kind: 'http', url: `${base}/x`, ...step },
      attempt: 1,
      context,
      signal,
      state: null,
    };
  }

  function json(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
    return (_req, res) =>
      void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  it('GETs by default and keeps a JSON answer as the output, with a safe subset of its headers', async () => {
    answer = json(200, { ok: true, n: 1 }, { 'set-cookie': 'session=abc', etag: '"v1"', 'x-secret': 'nope' });
    const result = await executor.execute(run({}));
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe('GET');
    expect(seen[0].body).toBe('');
    expect(result).toEqual({
      kind: 'done',
      output: { ok: true, n: 1 },
      response: {
        status: 200,
        headers: { 'content-type': 'application/json', etag: '"v1"' },
        body: { ok: true, n: 1 },
      },
    });
  });

  it('keeps a text answer as text, and JSON that does not parse as text too', async () => {
    answer = (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello there');
    expect(await executor.execute(run({}))).toMatchObject({ kind: 'done', output: 'hello there' });
    answer = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{not json');
    expect(await executor.execute(run({}))).toMatchObject({ kind: 'done', output: '{not json' });
  });

  it('renders url, headers and body with the run context, and POSTs a body as JSON', async () => {
    answer = json(201, { created: true });
    const result = await executor.execute(
      run({
        url: `${base}/users/{{ trigger.user.id }}?run={{ run.id }}`,
        headers: { authorization: 'Bearer {{ trigger.token }}', 'x-count': '{{ $count(steps.prev.output.items) }}' },
        body: { name: '{{ trigger.user.name }}', items: '{{ steps.prev.output.items }}', fixed: 7 },
      }),
    );
    expect(result).toMatchObject({ kind: 'done', output: { created: true }, response: { status: 201 } });
    expect(seen[0]).toMatchObject({ method: 'POST', path: '/users/42?run=run-1' });
    expect(seen[0].headers.authorization).toBe('Bearer s3cr3t-token');
    expect(seen[0].headers['x-count']).toBe('3');
    expect(seen[0].headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0].body)).toEqual({ name: 'Ada', items: [1, 2, 3], fixed: 7 });
  });

  it('uses the method given, and sends a string body as text', async () => {
    await executor.execute(run({ method: 'PUT', body: 'plain {{ trigger.user.name }}' }));
    expect(seen[0]).toMatchObject({ method: 'PUT', body: 'plain Ada' });
    expect(seen[0].headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('fails a 4xx for good with http_<status>, and retries 408, 429 and 5xx', async () => {
    for (const [status, retryable] of [
      [400, false],
      [404, false],
      [408, true],
      [429, true],
      [500, true],
      [503, true],
    ] as const) {
      answer = json(status, { error: 'nope' });
      expect(await executor.execute(run({}))).toEqual({
        kind: 'failed',
        code: `http_${status}`,
        message: `the server answered HTTP ${status}`,
        retryable,
      });
    }
  });

  it('does not follow a redirect', async () => {
    answer = (_req, res) => void res.writeHead(302, { location: `${base}/elsewhere` }).end();
    expect(await executor.execute(run({}))).toMatchObject({ kind: 'failed', code: 'http_302', retryable: false });
    expect(seen.map((s) => s.path)).toEqual(['/x']);
  });

  it('times out at timeout_ms, retryably', async () => {
    answer = (_req, res) => void setTimeout(() => res.writeHead(200).end('late'), 1000);
    const started = Date.now();
    const result = await executor.execute(run({ timeout_ms: 100 }));
    expect(result).toEqual({ kind: 'failed', code: 'timeout', message: 'no answer within 100 ms', retryable: true });
    expect(Date.now() - started).toBeLessThan(900);
  });

  it("stops when the run's signal is aborted", async () => {
    answer = (_req, res) => void setTimeout(() => res.writeHead(200).end('late'), 1000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(await executor.execute(run({}, controller.signal))).toMatchObject({ kind: 'failed', code: 'aborted' });
  });

  it('fails a network error retryably', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await executor.execute(run({ url: `http://127.0.0.1:${port}/` }));
    expect(result).toMatchObject({ kind: 'failed', code: 'network_error', retryable: true });
    expect((result as { message: string }).message).toContain('ECONNREFUSED');
  });

  it('fails an answer over 1 MiB for good, whether it says its length or not', async () => {
    const big = 'a'.repeat(HTTP_STEP_MAX_RESPONSE_BYTES + 1);
    answer = (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(big);
    expect(await executor.execute(run({}))).toMatchObject({
      kind: 'failed',
      code: 'response_too_large',
      retryable: false,
    });
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: no length announced
      res.write('a'.repeat(HTTP_STEP_MAX_RESPONSE_BYTES));
      res.end('b');
    };
    expect(await executor.execute(run({}))).toMatchObject({ kind: 'failed', code: 'response_too_large' });
    // Exactly 1 MiB is kept.
    answer = (_req, res) => void res.writeHead(200).end('a'.repeat(HTTP_STEP_MAX_RESPONSE_BYTES));
    const result = await executor.execute(run({}));
    expect(result.kind).toBe('done');
    expect((result as { output: string }).output).toHaveLength(HTTP_STEP_MAX_RESPONSE_BYTES);
  });

  it('refuses private, link-local and loopback addresses unless the guard allows them', async () => {
    const strict = new HttpStepExecutor(strictGuard);
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://10.0.0.1/', `${base}/x`]) {
      const result = await strict.execute(run({ url }));
      expect(result).toMatchObject({ kind: 'failed', code: 'url_not_allowed', retryable: false });
    }
    // A template that renders to a private address is refused too, before any request.
    const templated = await strict.execute(run({ url: 'http://{{ "10.0.0." & "1" }}/' }));
    expect(templated).toMatchObject({ kind: 'failed', code: 'url_not_allowed' });
    expect(seen).toHaveLength(0);
  });

  it('refuses a host name that resolves to a private address, at connection time', async () => {
    const guard = new UrlGuard(false, {
      lookup: (_host, _opts, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]),
    });
    try {
      const port = new URL(base).port;
      const result = await new HttpStepExecutor(guard).execute(run({ url: `http://public.example:${port}/x` }));
      expect(result).toMatchObject({ kind: 'failed', code: 'url_not_allowed', retryable: false });
      expect((result as { message: string }).message).toContain('loopback');
      expect(seen).toHaveLength(0);
    } finally {
      await guard.close();
    }
  });

  it('fails for good when a template cannot be rendered', async () => {
    const result = await executor.execute(run({ url: `${base}/{{ $error("boom") }}` }));
    expect(result).toMatchObject({ kind: 'failed', code: 'expression_failed', retryable: false });
    expect(seen).toHaveLength(0);
  });

  describe('problems', () => {
    const problems = (step: Partial<HttpStep>) =>
      new HttpStepExecutor(strictGuard).problems({ id: 's', kind: 'http', ...step } as HttpStep);

    it('accepts a plain or templated URL with known method, string headers and a body', () => {
      expect(problems({ url: 'https://api.example.com/x' })).toEqual([]);
      expect(
        problems({
          url: 'https://api.example.com/{{ trigger.id }}',
          method: 'PATCH',
          headers: { authorization: 'Bearer {{ trigger.token }}' },
          body: { a: '{{ trigger.a }}' },
        }),
      ).toEqual([]);
    });

    it('names each bad field', () => {
      expect(problems({})).toEqual(['url: is required (a URL, or a template that renders one)']);
      expect(problems({ url: 'ftp://example.com/x' })).toEqual(['url: must use http or https, not ftp:']);
      expect(problems({ url: 'http://10.0.0.1/' })[0]).toMatch(/^url: points to a private address/);
      expect(problems({ url: 'https://example.com', method: 'TRACE' as 'GET' })).toEqual([
        'method: must be one of GET, POST, PUT, PATCH, DELETE',
      ]);
      expect(problems({ url: 'https://example.com', method: 'GET', body: { a: 1 } })).toEqual([
        'body: a GET request has no body',
      ]);
      expect(problems({ url: 'https://example.com', headers: ['x'] as unknown as Record<string, string> })).toEqual([
        'headers: must be an object of header names to strings',
      ]);
      expect(
        problems({ url: 'https://example.com', headers: { 'x-n': 5 as unknown as string, 'bad name': 'v' } }),
      ).toEqual(['headers.x-n: must be a string', 'headers.bad name: is not a valid header name']);
      const bad = problems({ url: 'https://example.com/{{ ( }}', body: { deep: ['{{ ] }}'] } });
      expect(bad).toHaveLength(2);
      expect(bad[0]).toMatch(/^url: invalid expression/);
      expect(bad[1]).toMatch(/^body\.deep\[0\]: invalid expression/);
    });
  });
});
