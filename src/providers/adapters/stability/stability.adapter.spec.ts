import { providerError } from '../../../../test/support/adapter-testing';
import { createServer, IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderContext, ProviderError, ProviderErrorCode, StartOutcome } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createStabilityEmulator } from '../../../../sandbox/emulators/stability.emulator';
import { StabilityAdapter } from './stability.adapter';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CORE = 'POST /v2beta/stable-image/generate/core';
const ULTRA = 'POST /v2beta/stable-image/generate/ultra';
const SD3 = 'POST /v2beta/stable-image/generate/sd3';

const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
/** Headers of every request the emulator received, in order. */
const seenHeaders: IncomingHttpHeaders[] = [];
let emulator: FastifyInstance;
let baseUrl: string;
let adapter: StabilityAdapter;

function configFor(env: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    STABILITY_API_KEY: SANDBOX_API_KEY,
    STABILITY_BASE_URL: baseUrl,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    ...env,
  });
}

type ImageInput = TaskInputOf<TaskType.ImageGeneration>;

function image(input: Partial<ImageInput> = {}): ImageInput {
  return { prompt: 'A lighthouse at dawn', style: 'realistic', size: '1024x1024', quality: 'standard', n: 1, ...input };
}

function context(input: ImageInput, signal = new AbortController().signal) {
  const progress: number[] = [];
  const ctx: ProviderContext<TaskType.ImageGeneration> = {
    taskId: 'task-1',
    type: TaskType.ImageGeneration,
    input,
    signal,
    reportProgress: (p) => progress.push(p),
  };
  return { ctx, progress };
}

async function completed(outcome: Promise<StartOutcome>) {
  const result = await outcome;
  if (result.kind !== 'completed') throw new Error(`expected completed, got ${result.kind}`);
  return result;
}

function lastFields(): Record<string, unknown> {
  return stats.lastBodies[stats.lastBodies.length - 1] as Record<string, unknown>;
}

beforeAll(async () => {
  emulator = createStabilityEmulator({ knobs, stats });
  emulator.addHook('onRequest', async (req) => {
    seenHeaders.push(req.headers);
  });
  await emulator.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
  adapter = new StabilityAdapter(configFor());
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  Object.assign(knobs, DEFAULT_KNOBS);
  stats.reset();
  seenHeaders.length = 0;
});

describe('StabilityAdapter: requests', () => {
  it('sends one multipart request to core with the mapped fields, JSON accept and the bearer key', async () => {
    const { ctx, progress } = context(image());
    const result = await completed(adapter.start(ctx));

    expect(Object.fromEntries(stats.requests)).toEqual({ [CORE]: 1 });
    expect(lastFields()).toEqual({
      prompt: 'A lighthouse at dawn',
      aspect_ratio: '1:1',
      style_preset: 'photographic',
      output_format: 'png',
    });
    expect(seenHeaders).toHaveLength(1);
    expect(seenHeaders[0]['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(seenHeaders[0].accept).toBe('application/json');
    expect(seenHeaders[0].authorization).toBe(`Bearer ${SANDBOX_API_KEY}`);

    const [artifact] = result.output.artifacts;
    expect(artifact.contentType).toBe('image/png');
    expect(artifact.filename).toBe('image-1.png');
    expect(artifact.data!.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(result.output.data).toEqual({ endpoint: 'core', seeds: [expect.any(Number)], aspect_ratio: '1:1' });
    expect(progress).toEqual([1]);
  });

  it.each([
    ['standard, no model', { quality: 'standard' }, CORE, 'core', undefined],
    ['hd, no model', { quality: 'hd' }, ULTRA, 'ultra', undefined],
    ['sd3.5-large', { model: 'sd3.5-large' }, SD3, 'sd3', 'sd3.5-large'],
    ['sd3.5-large-turbo', { model: 'sd3.5-large-turbo' }, SD3, 'sd3', 'sd3.5-large-turbo'],
    ['sd3.5-medium', { model: 'sd3.5-medium' }, SD3, 'sd3', 'sd3.5-medium'],
    ['a model wins over hd', { model: 'sd3.5-flash', quality: 'hd' }, SD3, 'sd3', 'sd3.5-flash'],
  ] satisfies [string, Partial<ImageInput>, string, string, string | undefined][])(
    'chooses the endpoint: %s',
    async (_label, input, route, endpoint, model) => {
      const result = await completed(adapter.start(context(image(input)).ctx));
      expect(Object.fromEntries(stats.requests)).toEqual({ [route]: 1 });
      expect(lastFields().model).toBe(model);
      expect(result.output.data?.endpoint).toBe(endpoint);
      expect(result.output.data?.model).toBe(model);
    },
  );

  it.each([
    ['512x512', 'realistic', '1:1', 'photographic'],
    ['1024x1024', 'artistic', '1:1', 'digital-art'],
    ['1024x1792', 'anime', '9:16', 'anime'],
  ] as const)(
    'maps size %s and style %s to aspect_ratio %s and style_preset %s',
    async (size, style, ratio, preset) => {
      const result = await completed(adapter.start(context(image({ size, style })).ctx));
      expect(lastFields()).toMatchObject({ aspect_ratio: ratio, style_preset: preset });
      expect(result.output.data?.aspect_ratio).toBe(ratio);
    },
  );

  it('n=3 sends 3 requests and returns 3 PNGs, with progress i/n', async () => {
    const { ctx, progress } = context(image({ n: 3 }));
    const result = await completed(adapter.start(ctx));

    expect(stats.requests.get(CORE)).toBe(3);
    expect(stats.submissions).toBe(3);
    expect(result.output.artifacts.map((a) => a.filename)).toEqual(['image-1.png', 'image-2.png', 'image-3.png']);
    for (const artifact of result.output.artifacts) expect(artifact.data!.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(new Set(result.output.data?.seeds as number[]).size).toBe(3);
    expect(progress).toEqual([1 / 3, 2 / 3, 1]);
    expect(result.cost?.amount).toBeCloseTo(0.09, 10);
  });
});

describe('StabilityAdapter: cost and validation', () => {
  it.each([
    [{ quality: 'standard' }, 1, 0.03],
    [{ quality: 'hd' }, 1, 0.08],
    [{ model: 'sd3.5-large' }, 1, 0.065],
    [{ model: 'sd3.5-large-turbo' }, 1, 0.04],
    [{ model: 'sd3.5-medium' }, 1, 0.035],
    [{ model: 'sd3.5-flash' }, 1, 0.025],
    [{ quality: 'hd' }, 4, 0.32],
    [{ model: 'sd3.5-large' }, 3, 0.195],
  ] satisfies [Partial<ImageInput>, number, number][])('estimateCost %j × %i = $%d', (input, n, amount) => {
    const cost = adapter.estimateCost({ type: TaskType.ImageGeneration, input: image({ ...input, n }) });
    expect(cost.currency).toBe('USD');
    expect(cost.amount).toBeCloseTo(amount, 10);
  });

  it('charges what it estimated', async () => {
    const input = image({ model: 'sd3.5-large', n: 2 });
    const result = await completed(adapter.start(context(input).ctx));
    expect(result.cost).toEqual(adapter.estimateCost({ type: TaskType.ImageGeneration, input }));
    expect(result.cost?.amount).toBeCloseTo(0.13, 10);
  });

  it('is configured only with a key and offers image generation only', () => {
    expect(adapter.isConfigured()).toBe(true);
    expect(new StabilityAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
    expect(adapter.supports(TaskType.ImageGeneration)).toBe(true);
    expect(adapter.supports(TaskType.VideoGeneration)).toBe(false);
  });

  it.each([
    ['a valid input', image(), []],
    ['an sd3 model', image({ model: 'sd3.5-medium' }), []],
    ['dall-e-3', image({ model: 'dall-e-3' }), [{ field: 'model', message: 'model: stability cannot run dall-e-3' }]],
    [
      'gpt-image-1',
      image({ model: 'gpt-image-1' }),
      [{ field: 'model', message: 'model: stability cannot run gpt-image-1' }],
    ],
    ['a 10000-char prompt', image({ prompt: 'a'.repeat(10000) }), []],
    [
      'a 10001-char prompt',
      image({ prompt: 'a'.repeat(10001) }),
      [{ field: 'prompt', message: 'prompt: stability accepts at most 10000 characters' }],
    ],
  ])('validate: %s', (_label, input, problems) => {
    expect(adapter.validate({ type: TaskType.ImageGeneration, input })).toEqual(problems);
  });

  it('start refuses an invalid input without calling the API', async () => {
    const err = await providerError(adapter.start(context(image({ model: 'dall-e-3' })).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false });
    expect(stats.requests.size).toBe(0);
  });
});

describe('StabilityAdapter: errors', () => {
  /** A plain HTTP server for answers the emulator never gives; `handler` gets the arrival index of each request. */
  let stub: Server;
  let stubCalls = 0;
  let handler: (index: number, res: ServerResponse) => void = () => undefined;
  const answer = (status: number, type: string, body: string) => (_i: number, res: ServerResponse) =>
    void res.writeHead(status, { 'content-type': type }).end(body);
  const useStub = (next: typeof handler) => {
    handler = next;
    stubCalls = 0;
    return new StabilityAdapter(
      configFor({ STABILITY_BASE_URL: `http://127.0.0.1:${(stub.address() as AddressInfo).port}` }),
    );
  };

  beforeAll(async () => {
    stub = createServer((req, res) => {
      req.resume();
      req.on('end', () => handler(stubCalls++, res));
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    stub.closeAllConnections();
    await new Promise((resolve) => stub.close(resolve));
  });

  it('401 (wrong key) → permanent provider_auth_failed, without the key in the message', async () => {
    const wrongKey = 'sk-wrong-key-123456789';
    const err = await providerError(
      new StabilityAdapter(configFor({ STABILITY_API_KEY: wrongKey })).start(context(image()).ctx),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
    expect(err.message).not.toContain(wrongKey);
  });

  it('403 content_moderation → permanent content_policy', async () => {
    const err = await providerError(adapter.start(context(image({ prompt: 'something forbidden' })).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false, status: 403 });
  });

  it('finish_reason CONTENT_FILTERED → permanent content_policy', async () => {
    const err = await providerError(adapter.start(context(image({ prompt: 'a blurred thing' })).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false });
  });

  it('429 → transient rate_limited after Retry-After (1 s)', async () => {
    knobs.rateLimitRate = 1;
    const err = await providerError(adapter.start(context(image()).ctx));
    expect(err).toMatchObject({
      code: ProviderErrorCode.RateLimited,
      retryable: true,
      retryAfterMs: 1000,
      status: 429,
    });
  });

  it('500 → transient provider_unavailable, with the vendor message', async () => {
    knobs.failureRate = 1;
    const err = await providerError(adapter.start(context(image()).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
    expect(err.message).toContain('internal_error');
    expect(err.message).not.toContain(SANDBOX_API_KEY);
  });

  it('413 → permanent invalid_request', async () => {
    const body = '{"id":"x","name":"payload_too_large","errors":["body: too big"]}';
    const err = await providerError(useStub(answer(413, 'application/json', body)).start(context(image()).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 413 });
    expect(err.message).toContain('payload_too_large: body: too big');
  });

  it('a 502 HTML page from a proxy → transient provider_unavailable', async () => {
    const stubbed = useStub(answer(502, 'text/html', '<html>Bad gateway</html>'));
    const err = await providerError(stubbed.start(context(image()).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 502 });
  });

  it('a 200 without an image → transient provider_bad_response', async () => {
    const stubbed = useStub(answer(200, 'application/json', '{"finish_reason":"SUCCESS"}'));
    const err = await providerError(stubbed.start(context(image()).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.BadResponse, retryable: true });
  });

  it('reads an answer of the real API (no emulator headers)', async () => {
    const png = PNG_SIGNATURE.toString('base64');
    const body = JSON.stringify({ image: png, finish_reason: 'SUCCESS', seed: 7 });
    const result = await completed(useStub(answer(200, 'application/json', body)).start(context(image()).ctx));
    expect(result.output.artifacts[0].data).toEqual(PNG_SIGNATURE);
    expect(result.output.data?.seeds).toEqual([7]);
  });

  it('one failed image fails the task and aborts the sibling requests', async () => {
    const aborted: number[] = [];
    const stubbed = useStub((i, res) => {
      if (i === 0)
        return answer(500, 'application/json', '{"id":"x","name":"internal_error","errors":["boom"]}')(i, res);
      const timer = setTimeout(() => answer(200, 'application/json', '{}')(i, res), 1500);
      res.on('close', () => {
        clearTimeout(timer);
        if (!res.writableEnded) aborted.push(i);
      });
    });
    const { ctx, progress } = context(image({ n: 3 }));
    const err = await providerError(stubbed.start(ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, status: 500 });
    for (let waited = 0; aborted.length < 2 && waited < 500; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(aborted.sort()).toEqual([1, 2]);
    expect(progress).toEqual([]);
  });

  it('a closed port → transient network_error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const err = await providerError(
      new StabilityAdapter(configFor({ STABILITY_BASE_URL: `http://127.0.0.1:${port}` })).start(context(image()).ctx),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.Network, retryable: true });
  });

  it('latency over the HTTP timeout → transient provider_timeout', async () => {
    knobs.latencyMs = 1500;
    const quick = new StabilityAdapter(configFor({ PROVIDER_HTTP_TIMEOUT_MS: '200' }));
    const began = Date.now();
    const err = await providerError(quick.start(context(image()).ctx));
    expect(err).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    expect(Date.now() - began).toBeLessThan(1000);
  });

  it('an abort mid-call rejects at once, not as a ProviderError', async () => {
    knobs.latencyMs = 1500;
    const controller = new AbortController();
    const { ctx, progress } = context(image({ n: 2 }), controller.signal);
    const began = Date.now();
    const run = adapter.start(ctx);
    setTimeout(() => controller.abort(), 100);
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(err).not.toBeInstanceOf(ProviderError);
    expect(Date.now() - began).toBeLessThan(1000);
    expect(progress).toEqual([]);
  });
});

describe('Stability emulator', () => {
  const url = (endpoint: string) => `${baseUrl}/v2beta/stable-image/generate/${endpoint}`;
  const auth = { authorization: `Bearer ${SANDBOX_API_KEY}` };
  const form = (fields: Record<string, string>) => {
    const body = new FormData();
    for (const [key, value] of Object.entries(fields)) body.append(key, value);
    return body;
  };

  it('refuses a JSON body with the API error shape', async () => {
    const res = await fetch(url('core'), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ prompt: 'x' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-sandbox')).toBe('true');
    expect(await res.json()).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      name: 'bad_request',
      errors: ['content-type: must be multipart/form-data'],
    });
  });

  it('lists every field problem', async () => {
    const res = await fetch(url('sd3'), {
      method: 'POST',
      headers: { ...auth, accept: 'application/json' },
      body: form({ aspect_ratio: '7:3', style_preset: 'oil', model: 'sdxl', output_format: 'gif', seed: '-1' }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: string[] };
    expect(body.errors.map((e) => e.split(':')[0])).toEqual([
      'prompt',
      'aspect_ratio',
      'style_preset',
      'output_format',
      'seed',
      'model',
    ]);
  });

  it('answers accept image/* with raw PNG bytes and finish-reason/seed headers', async () => {
    const res = await fetch(url('ultra'), {
      method: 'POST',
      headers: { ...auth, accept: 'image/*' },
      body: form({ prompt: 'a cat', aspect_ratio: '16:9', seed: '42' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('finish-reason')).toBe('SUCCESS');
    expect(res.headers.get('seed')).toBe('42');
    expect(res.headers.get('x-sandbox')).toBe('true');
    expect(Buffer.from(await res.arrayBuffer()).subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('answers 401 to a missing bearer and 404 to an unknown route, both in the API shape', async () => {
    const unauthorized = await fetch(url('core'), { method: 'POST', body: form({ prompt: 'a cat' }) });
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toMatchObject({ name: 'unauthorized' });
    const missing = await fetch(`${baseUrl}/v2beta/stable-image/generate/sd4`, { method: 'POST', headers: auth });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-sandbox')).toBe('true');
  });

  it('enforces the real per-key window when asked (150 / 10 s in production)', async () => {
    const limited = createStabilityEmulator({
      knobs: { ...DEFAULT_KNOBS },
      stats: new EmulatorStats(),
      rateWindow: { max: 2, windowMs: 10_000, penaltyMs: 60_000 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await limited.inject({
          method: 'POST',
          url: '/v2beta/stable-image/generate/core',
          headers: { ...auth, accept: 'application/json', 'content-type': 'multipart/form-data; boundary=b' },
          payload: '--b\r\ncontent-disposition: form-data; name="prompt"\r\n\r\na cat\r\n--b--\r\n',
        });
        statuses.push(res.statusCode);
        if (res.statusCode === 429) expect(res.headers['retry-after']).toBe('60');
      }
      expect(statuses).toEqual([200, 200, 429]);
    } finally {
      await limited.close();
    }
  });
});
