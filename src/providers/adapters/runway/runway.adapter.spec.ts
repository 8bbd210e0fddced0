import { ctxFor, pollToEnd, providerError, submitAsync } from '../../../../test/support/adapter-testing';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode, ProviderJobRef } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createRunwayEmulator } from '../../../../sandbox/emulators/runway.emulator';
import { RunwayAdapter } from './runway.adapter';

const VIDEO_INPUT: TaskInputOf<TaskType.VideoGeneration> = {
  prompt: 'Waves rolling onto a beach at sunset',
  image_url: 'https://example.com/frame.png',
  duration: 5,
  fps: 24,
  resolution: '720p',
};
const IMAGE_INPUT: TaskInputOf<TaskType.ImageGeneration> = {
  prompt: 'A lighthouse at dawn',
  size: '1024x1024',
  n: 1,
  style: 'realistic',
};

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

function configFor(baseUrl: string, extra: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    RUNWAY_API_KEY: SANDBOX_API_KEY,
    RUNWAY_BASE_URL: baseUrl,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    ...extra,
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('RunwayAdapter against the Runway emulator', () => {
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
  const stats = new EmulatorStats();
  const seen: Seen[] = [];
  let emulator: FastifyInstance;
  let baseUrl: string;
  let adapter: RunwayAdapter;

  beforeAll(async () => {
    emulator = createRunwayEmulator({ knobs, stats });
    emulator.addHook('onRequest', async (req) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
    });
    await emulator.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
    adapter = new RunwayAdapter(configFor(baseUrl));
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
    expect(adapter.name).toBe('runway');
    expect(adapter.taskTypes).toEqual([TaskType.VideoGeneration, TaskType.ImageGeneration]);
    expect(adapter.qualityScore).toBe(0.85);
    expect(adapter.isConfigured()).toBe(true);
    expect(new RunwayAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
  });

  it('submits image_to_video once, with the version header and gen4_turbo fields', async () => {
    const { job, pollAfterMs } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: {
        ...VIDEO_INPUT,
        resolution: '4k',
      },
    });

    expect(job).toEqual({ id: expect.any(String), kind: 'video', model: 'gen4_turbo', ratio: '1280:720', duration: 5 });
    expect(pollAfterMs).toBeGreaterThanOrEqual(5000);
    expect(stats.submissions).toBe(1);
    expect(stats.requests.get('POST /v1/image_to_video')).toBe(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/image_to_video' });
    expect(seen[0].headers).toMatchObject({
      authorization: `Bearer ${SANDBOX_API_KEY}`,
      'x-runway-version': '2024-11-06',
      'content-type': 'application/json',
    });
    expect(stats.lastBodies).toEqual([
      {
        model: 'gen4_turbo',
        promptImage: VIDEO_INPUT.image_url,
        promptText: VIDEO_INPUT.prompt,
        ratio: '1280:720',
        duration: 5,
      },
    ]);
  });

  it('sends a prompt alone to text_to_video on gen4.5, priced at its 12 credits a second', async () => {
    const input: TaskInputOf<TaskType.VideoGeneration> = {
      prompt: 'A fox running through snow',
      duration: 5,
      resolution: '1080p',
    };
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input });

    expect(job).toEqual({ id: expect.any(String), kind: 'video', model: 'gen4.5', ratio: '1280:720', duration: 5 });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/text_to_video' });
    expect(stats.requests.get('POST /v1/image_to_video')).toBeUndefined();
    // gen4.5 offers 1280:720 and 720:1280 only: 1080p gets its landscape frame.
    expect(stats.lastBodies).toEqual([{ model: 'gen4.5', promptText: input.prompt, ratio: '1280:720', duration: 5 }]);

    const outcomes = await pollToEnd(adapter, ctx, job);
    expect(outcomes.map((o) => o.kind)).toEqual(['running', 'running', 'completed']);
    const done = outcomes[2];
    if (done.kind !== 'completed') throw new Error('not completed');
    expect(done.output.data).toEqual({ model: 'gen4.5', runway_task_id: job.id });
    expect(done.output.artifacts).toEqual([
      { url: expect.any(String), contentType: 'video/mp4', filename: `${job.id}.mp4` },
    ]);
    expect(done.cost).toEqual({ amount: 0.6, currency: 'USD' });
    expect(adapter.estimateCost({ type: TaskType.VideoGeneration, input })).toEqual(done.cost);
    const file = await request(done.output.artifacts[0].url!);
    expect(
      Buffer.from(await file.body.arrayBuffer())
        .subarray(4, 8)
        .toString('ascii'),
    ).toBe('ftyp');
  });

  it('runs a named Veo model with its own durations and frames, and no (extra-cost) audio', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: {
        prompt: 'A lighthouse in a storm',
        model: 'veo3.1',
        duration: 5,
        resolution: '1080p',
      },
    });
    expect(job).toMatchObject({ model: 'veo3.1', ratio: '1920:1080', duration: 6 });
    expect(stats.lastBodies).toEqual([
      { model: 'veo3.1', promptText: 'A lighthouse in a storm', ratio: '1920:1080', duration: 6, audio: false },
    ]);
    expect(
      adapter.estimateCost({ type: TaskType.VideoGeneration, input: { prompt: 'x', model: 'veo3.1', duration: 5 } })
        .amount,
    ).toBe(1.2);
    expect(
      adapter.estimateCost({
        type: TaskType.VideoGeneration,
        input: { prompt: 'x', model: 'veo3.1_fast', duration: 4 },
      }).amount,
    ).toBe(0.4);
    // veo3 makes 8 s and nothing else.
    expect(
      adapter.estimateCost({ type: TaskType.VideoGeneration, input: { prompt: 'x', model: 'veo3', duration: 2 } })
        .amount,
    ).toBe(3.2);

    // A start image with a named model goes to image_to_video on that model.
    const withImage = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: { ...VIDEO_INPUT, model: 'veo3' },
    });
    expect(withImage.job).toMatchObject({ model: 'veo3', duration: 8, ratio: '1280:720' });
    expect(seen.at(-1)).toMatchObject({ url: '/v1/image_to_video' });
    expect(stats.lastBodies.at(-1)).toEqual({
      model: 'veo3',
      promptImage: VIDEO_INPUT.image_url,
      promptText: VIDEO_INPUT.prompt,
      ratio: '1280:720',
      duration: 8,
    });
  });

  it('emulator: text_to_video answers each model’s rules with runway’s 400 {error}', async () => {
    const post = async (body: Record<string, unknown>) => {
      const res = await request(`${baseUrl}/v1/text_to_video`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${SANDBOX_API_KEY}`,
          'x-runway-version': '2024-11-06',
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: string; id?: string } };
    };
    const ok = { model: 'gen4.5', promptText: 'waves', ratio: '1280:720', duration: 5 };
    expect(await post(ok)).toEqual({ status: 200, body: { id: expect.any(String) } });
    expect(await post({ ...ok, model: 'gen4_turbo' })).toEqual({
      status: 400,
      body: { error: 'model: must be one of gen4.5, veo3.1, veo3.1_fast, veo3' },
    });
    expect((await post({ ...ok, ratio: '1920:1080' })).body.error).toBe('ratio: must be one of 1280:720, 720:1280');
    expect((await post({ ...ok, duration: undefined })).body.error).toBe('duration: is required');
    expect((await post({ ...ok, promptText: '' })).body.error).toBe('promptText: must be a non-empty string');
    expect((await post({ ...ok, audio: false })).body.error).toBe('audio: is not supported by gen4.5');
    const veo = { model: 'veo3.1', promptText: 'waves', ratio: '1920:1080' };
    expect((await post(veo)).status).toBe(200);
    expect((await post({ ...veo, duration: 5 })).body.error).toBe('duration: must be one of 4, 6, 8');
    expect((await post({ ...veo, audio: 'no' })).body.error).toBe('audio: must be a boolean');
    expect((await post({ ...veo, model: 'veo3' })).body.error).toBe('duration: is required');
    expect(stats.submissions).toBe(2);
  });

  it('clamps a short video to runway’s 2 s minimum', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: { ...VIDEO_INPUT, duration: 1 },
    });
    expect(job.duration).toBe(2);
    expect(stats.lastBodies[0]).toMatchObject({ duration: 2 });
  });

  it('submits text_to_image with gen4_image and the size mapped to a ratio', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.ImageGeneration,
      input: { ...IMAGE_INPUT, size: '1024x1792' },
    });
    expect(job).toMatchObject({ kind: 'image', model: 'gen4_image', ratio: '1080:1920' });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/text_to_image' });
    expect(stats.lastBodies).toEqual([{ model: 'gen4_image', promptText: IMAGE_INPUT.prompt, ratio: '1080:1920' }]);
  });

  it('runs a video through PENDING and RUNNING to an MP4 artifact, priced per second', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO_INPUT });
    const outcomes = await pollToEnd(adapter, ctx, job);

    expect(outcomes.map((o) => o.kind)).toEqual(['running', 'running', 'completed']);
    expect(outcomes[0]).toEqual({ kind: 'running', pollAfterMs: 5000 });
    expect(outcomes[1]).toEqual({ kind: 'running', progress: 0.5, pollAfterMs: 5000 });
    const done = outcomes[2];
    if (done.kind !== 'completed') throw new Error('not completed');
    expect(done.output.data).toEqual({ model: 'gen4_turbo', runway_task_id: job.id });
    expect(done.output.artifacts).toEqual([
      {
        url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\//),
        contentType: 'video/mp4',
        filename: `${job.id}.mp4`,
      },
    ]);
    expect(done.cost).toEqual({ amount: 0.25, currency: 'USD' });
    expect(adapter.estimateCost({ type: TaskType.VideoGeneration, input: VIDEO_INPUT })).toEqual(done.cost);

    const file = await request(done.output.artifacts[0].url!);
    const bytes = Buffer.from(await file.body.arrayBuffer());
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('video/mp4');
    expect(bytes.subarray(4, 8).toString('ascii')).toBe('ftyp');
    expect(stats.inFlight).toBe(0);
  });

  it('runs an image to a PNG artifact at the 1080p image price', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.ImageGeneration, input: IMAGE_INPUT });
    const done = (await pollToEnd(adapter, ctx, job)).pop()!;
    if (done.kind !== 'completed') throw new Error('not completed');

    expect(done.output.artifacts).toEqual([
      { url: expect.any(String), contentType: 'image/png', filename: `${job.id}.png` },
    ]);
    expect(done.cost).toEqual({ amount: 0.08, currency: 'USD' });
    const file = await request(done.output.artifacts[0].url!);
    const bytes = Buffer.from(await file.body.arrayBuffer());
    expect(file.headers['content-type']).toBe('image/png');
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: a square thumbnail for the square ratio.
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([64, 64]);
  });

  it('prices from the published rates before running', () => {
    expect(
      adapter.estimateCost({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, duration: 10 } }).amount,
    ).toBe(0.5);
    expect(
      adapter.estimateCost({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, duration: 7 } }).amount,
    ).toBe(0.35);
    expect(
      adapter.estimateCost({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, duration: 1 } }).amount,
    ).toBe(0.1);
    expect(
      adapter.estimateCost({ type: TaskType.ImageGeneration, input: { ...IMAGE_INPUT, size: '512x512' } }).amount,
    ).toBe(0.05);
    expect(
      adapter.estimateCost({ type: TaskType.ImageGeneration, input: { ...IMAGE_INPUT, size: '1024x1792' } }).amount,
    ).toBe(0.08);
  });

  it('re-attaches: a fresh adapter polls a stored job to the end', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: { ...VIDEO_INPUT, duration: 8 },
    });
    const stored = JSON.parse(JSON.stringify(job)) as ProviderJobRef;
    const fresh = new RunwayAdapter(configFor(baseUrl));
    const ctx = ctxFor({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, duration: 8 } });
    const done = (await pollToEnd(fresh, ctx, stored)).pop()!;
    expect(done).toMatchObject({ kind: 'completed', cost: { amount: 0.4 } });
    expect(stats.submissions).toBe(1);
  });

  it('re-attaches with only the job id, pricing from the task input', async () => {
    const { job } = await submitAsync(adapter, {
      type: TaskType.VideoGeneration,
      input: { ...VIDEO_INPUT, duration: 4 },
    });
    const done = (
      await pollToEnd(adapter, ctxFor({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, duration: 4 } }), {
        id: job.id,
      })
    ).pop()!;
    expect(done).toMatchObject({
      kind: 'completed',
      cost: { amount: 0.2 },
      output: { artifacts: [{ contentType: 'video/mp4' }] },
    });

    // A prompt-only job is priced as the gen4.5 text_to_video it was.
    const textInput = { prompt: 'waves', duration: 3 };
    const text = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: textInput });
    const textDone = (
      await pollToEnd(adapter, ctxFor({ type: TaskType.VideoGeneration, input: textInput }), { id: text.job.id })
    ).pop()!;
    expect(textDone).toMatchObject({
      kind: 'completed',
      cost: { amount: 0.36 },
      output: { data: { model: 'gen4.5' } },
    });
  });

  it('cancels with DELETE: the emulator says CANCELLED and the next poll fails for good', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO_INPUT });
    await adapter.poll(ctx, job);
    await adapter.cancel(job);

    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: `/v1/tasks/${job.id}` });
    expect(seen.at(-1)!.headers['x-runway-version']).toBe('2024-11-06');
    const task = await request(`${baseUrl}/v1/tasks/${job.id}`, {
      headers: { authorization: `Bearer ${SANDBOX_API_KEY}`, 'x-runway-version': '2024-11-06' },
    });
    expect(await task.body.json()).toMatchObject({ id: job.id, status: 'CANCELLED' });
    expect(stats.inFlight).toBe(0);

    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('cancelled at the provider');

    // A second DELETE removes the finished task; after that it is gone, and cancelling again is still no error.
    await adapter.cancel(job);
    await expect(adapter.cancel(job)).resolves.toBeUndefined();
    const gone = await providerError(adapter.poll(ctx, job));
    expect(gone).toMatchObject({ code: ProviderErrorCode.NotFound, retryable: false });
    expect(gone.message).toMatch(/job expired/);
  });

  it('keeps a stuck task running until it is cancelled', async () => {
    knobs.stuckRate = 1;
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO_INPUT });
    for (let i = 0; i < 6; i++) expect((await adapter.poll(ctx, job)).kind).toBe('running');
    expect(stats.inFlight).toBe(1);
    await adapter.cancel(job);
    expect(stats.inFlight).toBe(0);
  });

  it('names what runway cannot do', () => {
    expect(adapter.validate({ type: TaskType.VideoGeneration, input: VIDEO_INPUT })).toEqual([]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })).toEqual([]);
    // A prompt alone is a text_to_video job now.
    expect(adapter.validate({ type: TaskType.VideoGeneration, input: { prompt: 'waves', duration: 5 } })).toEqual([]);
    expect(
      adapter.validate({
        type: TaskType.VideoGeneration,
        input: { prompt: 'x'.repeat(1001), duration: 11, resolution: '720p' },
      }),
    ).toEqual([
      { field: 'prompt', message: 'prompt: runway takes at most 1000 characters' },
      { field: 'duration', message: "duration: runway's gen4.5 makes at most 10 s" },
    ]);
    expect(
      adapter.validate({ type: TaskType.VideoGeneration, input: { prompt: 'waves', model: 'gen4_turbo' } }),
    ).toEqual([
      {
        field: 'image_url',
        message:
          'image_url: gen4_turbo needs a start image (gen4.5, veo3.1, veo3.1_fast, veo3 make video from a prompt)',
      },
    ]);
    expect(
      adapter.validate({ type: TaskType.VideoGeneration, input: { prompt: 'waves', model: 'veo3.1', duration: 10 } }),
    ).toEqual([{ field: 'duration', message: "duration: runway's veo3.1 makes at most 8 s" }]);
    expect(adapter.validate({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, model: 'pika-2.2' } })).toEqual([
      { field: 'model', message: 'model: runway cannot run "pika-2.2"' },
    ]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: { ...IMAGE_INPUT, n: 2 } })).toEqual([
      { field: 'n', message: 'n: runway makes one image per request' },
    ]);
    expect(adapter.validate({ type: TaskType.ImageGeneration, input: { ...IMAGE_INPUT, model: 'dall-e-3' } })).toEqual([
      { field: 'model', message: 'model: runway cannot run "dall-e-3"' },
    ]);
    expect(
      adapter.validate({ type: TaskType.ImageGeneration, input: { ...IMAGE_INPUT, model: 'gen4_image' } }),
    ).toEqual([]);
  });

  it('refuses invalid input before calling runway', async () => {
    const err = await providerError(
      adapter.start(ctxFor({ type: TaskType.VideoGeneration, input: { prompt: 'no image', model: 'gen4_turbo' } })),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false });
    expect(seen).toHaveLength(0);
  });

  it('passes runway’s own 400 message on as a permanent invalid request', async () => {
    const err = await providerError(
      adapter.start(
        ctxFor({ type: TaskType.VideoGeneration, input: { ...VIDEO_INPUT, image_url: 'ftp://example.com/a.png' } }),
      ),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InvalidRequest, retryable: false, status: 400 });
    expect(err.message).toBe('runway answered 400: promptImage: must be an HTTPS URL or a data URI');
  });

  it('fails a bad key for good (401)', async () => {
    const wrong = new RunwayAdapter(configFor(baseUrl, { RUNWAY_API_KEY: 'key_wrong' }));
    const err = await providerError(wrong.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
    expect(err.message).toContain('Invalid API key');
    expect(stats.submissions).toBe(0);
  });

  it('retries a 429 after Retry-After', async () => {
    knobs.rateLimitRate = 1;
    const err = await providerError(adapter.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })));
    expect(err).toMatchObject({
      code: ProviderErrorCode.RateLimited,
      retryable: true,
      retryAfterMs: 1000,
      status: 429,
    });
    expect(stats.submissions).toBe(0);
  });

  it('fails a FAILED task for good with runway’s failure text', async () => {
    knobs.failureRate = 1;
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.VideoGeneration, input: VIDEO_INPUT });
    expect((await adapter.poll(ctx, job)).kind).toBe('running');
    expect((await adapter.poll(ctx, job)).kind).toBe('running');
    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('runway task failed: Sandbox failure (INTERNAL)');
    expect(stats.inFlight).toBe(0);
  });

  it('maps a SAFETY failure to content_policy', async () => {
    const { ctx, job } = await submitAsync(adapter, {
      type: TaskType.ImageGeneration,
      input: {
        ...IMAGE_INPUT,
        prompt: 'something forbidden',
      },
    });
    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false });
    expect(err.message).toContain('SAFETY.INPUT.TEXT');
  });

  it('retries a 500 from runway', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'overloaded' }));
    });
    try {
      const broken = new RunwayAdapter(configFor(await listen(server)));
      const err = await providerError(broken.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
      expect(err.message).toContain('overloaded');
    } finally {
      server.close();
    }
  });

  it('retries when runway cannot be reached', async () => {
    const server = createServer();
    const closedUrl = await listen(server);
    await new Promise((resolve) => server.close(resolve));
    const unreachable = new RunwayAdapter(configFor(closedUrl));
    const err = await providerError(unreachable.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.Network, retryable: true });
  });

  it('retries when runway answers too slowly', async () => {
    knobs.latencyMs = 800;
    const slow = new RunwayAdapter(configFor(baseUrl, { PROVIDER_HTTP_TIMEOUT_MS: '150' }));
    const err = await providerError(slow.start(ctxFor({ type: TaskType.ImageGeneration, input: IMAGE_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    // The emulator saw the client leave during its latency and made no job behind its back.
    await new Promise((r) => setTimeout(r, 800));
    expect(stats.submissions).toBe(0);
  });

  it('emulator: insists on the exact version header and the key, and marks every answer as sandbox', async () => {
    const wrongVersion = await request(`${baseUrl}/v1/tasks/x`, {
      headers: { authorization: `Bearer ${SANDBOX_API_KEY}`, 'x-runway-version': '2024-09-13' },
    });
    expect(wrongVersion.statusCode).toBe(400);
    expect(((await wrongVersion.body.json()) as { error: string }).error).toContain('X-Runway-Version');
    expect(wrongVersion.headers['x-sandbox']).toBe('true');

    const noKey = await request(`${baseUrl}/v1/tasks/x`, { headers: { 'x-runway-version': '2024-11-06' } });
    expect(noKey.statusCode).toBe(401);
    expect(await noKey.body.json()).toEqual({ error: 'Invalid API key' });
    expect(noKey.headers['x-sandbox']).toBe('true');
  });
});
