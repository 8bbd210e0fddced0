import { ctxFor, pollToEnd, providerError, submitAsync } from '../../../../test/support/adapter-testing';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { PollOutcome, ProviderErrorCode, ProviderJobRef } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createFalEmulator } from '../../../../sandbox/emulators/fal.emulator';
import { FalAdapter } from './fal.adapter';

const VIDEO: TaskInputOf<TaskType.VideoGeneration> = {
  prompt: 'Waves rolling onto a beach at sunset',
  duration: 5,
  fps: 24,
  resolution: '720p',
};
const FROM_IMAGE = { ...VIDEO, image_url: 'https://example.com/frame.png' };
const IMAGE: TaskInputOf<TaskType.ImageGeneration> = {
  prompt: 'A lighthouse at dawn',
  size: '1024x1024',
  n: 1,
  style: 'realistic',
};
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

describe('FalAdapter against the fal queue emulator', () => {
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
  const stats = new EmulatorStats();
  const seen: Seen[] = [];
  let emulator: FastifyInstance;
  let baseUrl: string;
  let adapter: FalAdapter;

  const configFor = (extra: Record<string, string> = {}) =>
    AppConfig.fromEnv({ FAL_KEY: SANDBOX_API_KEY, FAL_BASE_URL: baseUrl, PROVIDER_HTTP_TIMEOUT_MS: '2000', ...extra });

  /** A stand-in fal answering every call with one status and body (fal's documented error answers). */
  async function fakeFal(
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ server: Server; adapter: FalAdapter }> {
    const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { server, adapter: new FalAdapter(configFor({ FAL_BASE_URL: url })) };
  }

  beforeAll(async () => {
    emulator = createFalEmulator({ knobs, stats });
    emulator.addHook('onRequest', async (req) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
    });
    await emulator.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
    adapter = new FalAdapter(configFor());
  });

  beforeEach(() => {
    Object.assign(knobs, DEFAULT_KNOBS, { asyncSteps: 2 });
    stats.reset();
    seen.length = 0;
  });

  afterAll(async () => {
    await emulator.close();
  });

  it('describes itself and is configured only with a key', () => {
    expect(adapter.name).toBe('fal');
    expect(adapter.taskTypes).toEqual([TaskType.VideoGeneration, TaskType.ImageGeneration]);
    expect(adapter.qualityScore).toBe(0.8);
    expect(adapter.isConfigured()).toBe(true);
    expect(new FalAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
  });

  it('submits a prompt alone to Pika text-to-video with its key, and keeps the URLs fal answered', async () => {
    const { job, pollAfterMs } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/fal-ai/pika/v2.2/text-to-video' });
    expect(seen[0].headers).toMatchObject({
      authorization: `Key ${SANDBOX_API_KEY}`,
      'content-type': 'application/json',
    });
    expect(stats.lastBodies).toEqual([{ prompt: VIDEO.prompt, duration: 5, resolution: '720p' }]);
    // The status, result and cancel URLs are the app's (fal-ai/pika), without the endpoint path.
    expect(job).toEqual({
      id: expect.any(String),
      model: 'fal-ai/pika/v2.2/text-to-video',
      kind: 'video',
      status_url: `${baseUrl}/fal-ai/pika/requests/${job.id}/status`,
      response_url: `${baseUrl}/fal-ai/pika/requests/${job.id}`,
      cancel_url: `${baseUrl}/fal-ai/pika/requests/${job.id}/cancel`,
      duration: 5,
      resolution: '720p',
      queue_position: 3,
    });
    expect(pollAfterMs).toBe(2000);
  });

  it('sends a start image to Pika image-to-video, and a 7 s 1080p video as 10 s', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: {
        ...FROM_IMAGE,
        duration: 7,
        resolution: '1080p',
      },
    });
    expect(seen[0].url).toBe('/fal-ai/pika/v2.2/image-to-video');
    expect(stats.lastBodies).toEqual([
      { prompt: VIDEO.prompt, image_url: FROM_IMAGE.image_url, duration: 10, resolution: '1080p' },
    ]);
    expect(job).toMatchObject({ model: 'fal-ai/pika/v2.2/image-to-video', duration: 10, resolution: '1080p' });
  });

  it('walks a video through the queue, its position going down, to an MP4, priced per 5 s', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    const outcomes = await pollToEnd(adapter, ctx, job);

    expect(outcomes.slice(0, -1)).toEqual([
      { kind: 'running', pollAfterMs: 2000, queuePosition: 2 },
      { kind: 'running', pollAfterMs: 2000, queuePosition: 1 },
      { kind: 'running', pollAfterMs: 2000 },
    ]);
    const done = outcomes[outcomes.length - 1];
    if (done.kind !== 'completed') throw new Error('not completed');
    expect(done.output).toEqual({
      artifacts: [
        {
          url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/files\//),
          contentType: 'video/mp4',
          filename: `${job.id}.mp4`,
        },
      ],
      data: { model: 'fal-ai/pika/v2.2/text-to-video', fal_request_id: job.id },
    });
    expect(done.cost).toEqual({ amount: 0.2, currency: 'USD' });
    expect(adapter.estimateCost({ type: TaskType.VideoGeneration, input: VIDEO })).toEqual(done.cost);
    // Status answers go to the app's URL; the result is read once.
    const polls = seen.filter((s) => s.method === 'GET').map((s) => s.url);
    expect(polls).toEqual([
      ...Array(4).fill(`/fal-ai/pika/requests/${job.id}/status`),
      `/fal-ai/pika/requests/${job.id}`,
    ]);
    const file = await request(done.output.artifacts[0].url!);
    expect(file.headers['content-type']).toBe('video/mp4');
    expect(
      Buffer.from(await file.body.arrayBuffer())
        .subarray(4, 8)
        .toString('ascii'),
    ).toBe('ftyp');
    expect(stats.inFlight).toBe(0);
  });

  it('makes images with FLUX.1 [dev] at the exact size, priced per megapixel', async () => {
    const { ctx, job } = await submitAsync(adapter, {
      type: TaskType.ImageGeneration,
      input: { ...IMAGE, size: '1024x1792', n: 2 },
    });
    expect(seen[0].url).toBe('/fal-ai/flux/dev');
    expect(stats.lastBodies).toEqual([
      { prompt: IMAGE.prompt, image_size: { width: 1024, height: 1792 }, num_images: 2 },
    ]);
    expect(job).toMatchObject({
      kind: 'image',
      megapixels: 2,
      status_url: `${baseUrl}/fal-ai/flux/requests/${job.id}/status`,
    });
    const done = (await pollToEnd(adapter, ctx, job)).pop()!;
    if (done.kind !== 'completed') throw new Error('not completed');
    expect(done.output.artifacts).toEqual([
      { url: expect.any(String), contentType: 'image/png', filename: `${job.id}-1.png` },
      { url: expect.any(String), contentType: 'image/png', filename: `${job.id}-2.png` },
    ]);
    // 1024×1792 is 1.75 megapixels, billed as 2, for each of the two images.
    expect(done.cost).toEqual({ amount: 0.1, currency: 'USD' });
    expect(
      adapter.estimateCost({ type: TaskType.ImageGeneration, input: { ...IMAGE, size: '1024x1792', n: 2 } }),
    ).toEqual(done.cost);
    const file = await request(done.output.artifacts[1].url!);
    const bytes = Buffer.from(await file.body.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    // A portrait thumbnail, in the requested shape.
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([37, 64]);
  });

  it('re-attaches: a fresh adapter polls the stored job to the end without submitting again', async () => {
    const { job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: { ...VIDEO, duration: 10 } });
    const stored = JSON.parse(JSON.stringify(job)) as ProviderJobRef;
    const fresh = new FalAdapter(configFor());
    const done = (
      await pollToEnd(fresh, ctxFor({ type: TaskType.VideoGeneration, input: { ...VIDEO, duration: 10 } }), stored)
    ).pop()!;
    expect(done).toMatchObject({ kind: 'completed', cost: { amount: 0.4 } });
    // With only the id and model, the URLs are rebuilt on the app, and the price comes from the task's input.
    const { job: second } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: { ...VIDEO, resolution: '1080p' },
    });
    const bare = { id: second.id, model: second.model };
    const last = (
      await pollToEnd(fresh, ctxFor({ type: TaskType.VideoGeneration, input: { ...VIDEO, resolution: '1080p' } }), bare)
    ).pop()!;
    expect(last).toMatchObject({ kind: 'completed', cost: { amount: 0.45 } });
    expect(stats.submissions).toBe(2);
  });

  it('cancels at fal: the queued request is dropped and its next poll fails for good', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    await adapter.poll(ctx, job);
    await adapter.cancel(job);
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', url: `/fal-ai/pika/requests/${job.id}/cancel` });
    expect(stats.inFlight).toBe(0);
    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('cancelled at the provider');
    // Cancelling what is finished (400 ALREADY_COMPLETED) or unknown (404) is no error.
    await expect(adapter.cancel(job)).resolves.toBeUndefined();
    await expect(adapter.cancel({ ...job, id: 'nope', cancel_url: undefined })).resolves.toBeUndefined();
  });

  it('keeps a stuck request in progress until it is cancelled', async () => {
    knobs.stuckRate = 1;
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    const outcomes: PollOutcome[] = [];
    for (let i = 0; i < 6; i++) outcomes.push(await adapter.poll(ctx, job));
    expect(outcomes.map((o) => o.kind)).toEqual(Array(6).fill('running'));
    expect(stats.inFlight).toBe(1);
    await adapter.cancel(job);
    expect(stats.inFlight).toBe(0);
  });

  it('names what fal cannot do', () => {
    expect(adapter.validate({ type: TaskType.VideoGeneration, input: VIDEO })).toEqual([]);
    expect(adapter.validate({ type: TaskType.VideoGeneration, input: FROM_IMAGE })).toEqual([]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: IMAGE })).toEqual([]);
    expect(
      adapter.validate({ type: TaskType.VideoGeneration, input: { prompt: 'x', duration: 12, resolution: '4k' } }),
    ).toEqual([
      { field: 'duration', message: "duration: fal's video models make at most 10 s (5 or 10)" },
      { field: 'resolution', message: 'resolution: fal makes 720p or 1080p video, not "4k"' },
    ]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: { ...IMAGE, model: 'dall-e-3' } })).toEqual([
      { field: 'model', message: 'model: fal cannot serve "dall-e-3" (it runs fal-ai/flux/dev)' },
    ]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: { ...IMAGE, n: 5 } })).toEqual([
      { field: 'n', message: 'n: fal makes at most 4 images' },
    ]);
    expect(
      adapter.validate({
        type: TaskType.VideoGeneration,
        input: { ...FROM_IMAGE, model: 'fal-ai/pika/v2.2/text-to-video' },
      }),
    ).toEqual([
      {
        field: 'model',
        message: 'model: "fal-ai/pika/v2.2/text-to-video" makes video from a prompt alone, not from image_url',
      },
    ]);
    const imageOnly = new FalAdapter(configFor({ FAL_VIDEO_MODELS: 'fal-ai/pika/v2.2/image-to-video' }));
    expect(imageOnly.validate({ type: TaskType.VideoGeneration, input: VIDEO })).toEqual([
      { field: 'image_url', message: "image_url: fal's video models need a start image" },
    ]);
  });

  it('refuses invalid input before calling fal', async () => {
    const err = await providerError(
      adapter.start(ctxFor({ type: TaskType.VideoGeneration, input: { prompt: 'waves', duration: 12 } })),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false });
    expect(seen).toHaveLength(0);
  });

  it('fails a request the model refuses (422 detail list) for good, naming the field', async () => {
    // The model's own validation runs on fal's runner: the request is queued, and its result is the 422.
    const res = await request(`${baseUrl}/fal-ai/pika/v2.2/text-to-video`, {
      method: 'POST',
      headers: { authorization: `Key ${SANDBOX_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', duration: 7 }),
    });
    const { request_id: id } = (await res.body.json()) as { request_id: string };
    const job = { id, model: 'fal-ai/pika/v2.2/text-to-video' };
    const err = await providerError(pollToEnd(adapter, ctxFor({ type: TaskType.VideoGeneration, input: VIDEO }), job));
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 422 });
    expect(err.message).toBe('fal answered 422: duration: Input should be 5 or 10');
  });

  it('maps a content_policy_violation to content_policy', async () => {
    const { ctx, job } = await submitAsync(adapter, {
      type: TaskType.ImageGeneration,
      input: {
        ...IMAGE,
        prompt: 'something forbidden',
      },
    });
    const err = await providerError(pollToEnd(adapter, ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false, status: 422 });
    expect(err.message).toContain('prompt: The content could not be processed');
  });

  it('fails a request that failed at fal (a runner error) for good, with its error type', async () => {
    knobs.failureRate = 1;
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    const err = await providerError(pollToEnd(adapter, ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false, status: 500 });
    expect(err.message).toBe(
      'fal request failed: Internal error while running the sandbox model (runner_server_error)',
    );
  });

  it('fails a bad key for good (401), never echoing the key', async () => {
    const wrong = new FalAdapter(configFor({ FAL_KEY: 'wrong-id:wrong-secret' }));
    const err = await providerError(wrong.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE })));
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
    expect(err.message).toBe('fal answered 401: Invalid authentication credentials.');
    expect(stats.submissions).toBe(0);
  });

  it('fails a locked account for good (403)', async () => {
    const fake = await fakeFal(403, {
      detail: 'User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.',
    });
    try {
      const err = await providerError(fake.adapter.start(ctxFor({ type: TaskType.VideoGeneration, input: VIDEO })));
      expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 403 });
      expect(err.message).toContain('Exhausted balance');
    } finally {
      fake.server.close();
    }
  });

  it('retries a 429 after its Retry-After', async () => {
    knobs.rateLimitRate = 1;
    const err = await providerError(adapter.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE })));
    expect(err).toMatchObject({
      code: ProviderErrorCode.RateLimited,
      retryable: true,
      retryAfterMs: 1000,
      status: 429,
    });
    expect(stats.submissions).toBe(0);
  });

  it('passes a 422 at submit on as a permanent invalid request naming the field', async () => {
    const fake = await fakeFal(422, {
      detail: [
        { loc: ['body', 'prompt'], msg: 'Field required', type: 'missing', url: 'https://docs.fal.ai/errors#missing' },
      ],
    });
    try {
      const err = await providerError(fake.adapter.start(ctxFor({ type: TaskType.VideoGeneration, input: VIDEO })));
      expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 422 });
      expect(err.message).toBe('fal answered 422: prompt: Field required');
    } finally {
      fake.server.close();
    }
  });

  it('retries a 503 (no runner could be had) and a gateway page without fal’s body', async () => {
    const fake = await fakeFal(503, {
      detail: 'No runner could be allocated',
      error_type: 'runner_scheduling_failure',
    });
    try {
      const err = await providerError(fake.adapter.start(ctxFor({ type: TaskType.VideoGeneration, input: VIDEO })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 503 });
      expect(err.message).toContain('runner_scheduling_failure');
    } finally {
      fake.server.close();
    }
  });

  it('never sends its key to a URL outside the configured queue', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO });
    const forged = { ...job, status_url: 'http://127.0.0.1:9/steal', response_url: 'http://127.0.0.1:9/steal' };
    const outcome = await adapter.poll(ctx, forged);
    expect(outcome).toEqual({ kind: 'running', pollAfterMs: 2000, queuePosition: 2 });
    expect(seen.at(-1)!.url).toBe(`/fal-ai/pika/requests/${job.id}/status`);
  });

  it('emulator: wants the key, answers 202 while going and 200 when done, and serves results of its own app only', async () => {
    const noKey = await request(`${baseUrl}/fal-ai/flux/dev`, { method: 'POST', body: '{}' });
    expect(noKey.statusCode).toBe(401);
    expect(await noKey.body.json()).toEqual({ detail: 'Authentication is required to access this application.' });
    expect(noKey.headers['x-sandbox']).toBe('true');

    const { job } = await submitAsync(adapter, { type: TaskType.ImageGeneration, input: IMAGE });
    const headers = { authorization: `Key ${SANDBOX_API_KEY}` };
    const status = await request(`${baseUrl}/fal-ai/flux/requests/${job.id}/status`, { headers });
    expect(status.statusCode).toBe(202);
    expect(await status.body.json()).toMatchObject({ status: 'IN_QUEUE', queue_position: 1, request_id: job.id });
    const early = await request(`${baseUrl}/fal-ai/flux/requests/${job.id}`, { headers });
    expect(early.statusCode).toBe(400);
    await early.body.dump();
    await pollToEnd(adapter, ctxFor({ type: TaskType.ImageGeneration, input: IMAGE }), job);
    const done = await request(`${baseUrl}/fal-ai/flux/requests/${job.id}/status?logs=1`, { headers });
    expect(done.statusCode).toBe(200);
    expect(await done.body.json()).toMatchObject({
      status: 'COMPLETED',
      logs: [{ message: 'Running the sandbox model', level: 'INFO' }],
      metrics: { inference_time: expect.any(Number) },
    });
    const otherApp = await request(`${baseUrl}/fal-ai/pika/requests/${job.id}/status`, { headers });
    expect(otherApp.statusCode).toBe(404);
    await otherApp.body.dump();
    const unknownModel = await request(`${baseUrl}/nobody/nothing`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: '{"prompt":"x"}',
    });
    expect(unknownModel.statusCode).toBe(404);
    await unknownModel.body.dump();
  });
});
