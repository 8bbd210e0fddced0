import { ctxFor, pollToEnd, providerError, submitAsync } from '../../../../test/support/adapter-testing';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderContext, ProviderErrorCode, ProviderJobRef } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createRunpodEmulator } from '../../../../sandbox/emulators/runpod.emulator';
import { RunpodAdapter } from './runpod.adapter';
import { RunpodOperation } from './runpod.types';

const IMG2VID_INPUT: TaskInputOf<TaskType.Img2Vid> = {
  images: [
    { id: 'scene-1', image_url: 'https://example.com/1.jpg', duracao: 5 },
    { id: 'scene-2', image_url: 'https://example.com/2.jpg', duracao: 2.5 },
  ],
  path: 'campaign/2026',
};
const CAPTION_INPUT: TaskInputOf<TaskType.Caption> = {
  url_video: 'https://example.com/video.mp4',
  url_srt: 'https://example.com/video.srt',
  style: 'classic',
  output_filename: 'final.mp4',
};
const ADDAUDIO_INPUT: TaskInputOf<TaskType.AddAudio> = {
  url_video: 'https://example.com/video.mp4',
  url_audio: 'https://example.com/music.mp3',
};

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

function configFor(baseUrl: string, extra: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    RUNPOD_API_KEY: SANDBOX_API_KEY,
    RUNPOD_ENDPOINT_ID: 'sandbox',
    RUNPOD_BASE_URL: baseUrl,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    ...extra,
  });
}

async function stub(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<[Server, string]> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

describe('RunpodAdapter against the RunPod emulator', () => {
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
  const stats = new EmulatorStats();
  const seen: Seen[] = [];
  let emulator: FastifyInstance;
  let baseUrl: string;
  let adapter: RunpodAdapter;

  /** GET /status straight from the emulator (also moves the job a step, like any poll). */
  async function rawStatus(id: string): Promise<Record<string, unknown>> {
    const res = await request(`${baseUrl}/sandbox/status/${id}`, { headers: { authorization: SANDBOX_API_KEY } });
    return (await res.body.json()) as Record<string, unknown>;
  }

  beforeAll(async () => {
    emulator = createRunpodEmulator({ knobs, stats, endpointId: 'sandbox', workers: 3 });
    emulator.addHook('onRequest', async (req) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
    });
    await emulator.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
    adapter = new RunpodAdapter(configFor(baseUrl));
  });

  beforeEach(async () => {
    Object.assign(knobs, DEFAULT_KNOBS, { asyncSteps: 2 });
    // Jobs a test left running would hold workers: cancel them through the API before the next test.
    const health = await adapter.health();
    expect(health.jobs.inProgress + health.jobs.inQueue).toBe(0);
    stats.reset();
    seen.length = 0;
  });

  afterAll(async () => {
    await emulator.close();
  });

  it('describes itself and needs both key and endpoint id', () => {
    expect(adapter.name).toBe('runpod');
    expect(adapter.taskTypes).toEqual([TaskType.Img2Vid, TaskType.Caption, TaskType.AddAudio]);
    expect(adapter.qualityScore).toBe(0.7);
    expect(adapter.costModel).toBe('per second of GPU time ($0.00031/s default)');
    expect(adapter.isConfigured()).toBe(true);
    expect(new RunpodAdapter(AppConfig.fromEnv({ RUNPOD_API_KEY: 'k' })).isConfigured()).toBe(false);
    expect(new RunpodAdapter(AppConfig.fromEnv({ RUNPOD_ENDPOINT_ID: 'e' })).isConfigured()).toBe(false);
  });

  it('queues one job with POST /run: operation, input and the operation’s execution timeout', async () => {
    const { ctx, job, pollAfterMs } = await submitAsync(adapter, { type: TaskType.Img2Vid, input: IMG2VID_INPUT });

    expect(job).toEqual({ id: expect.any(String), submittedAt: expect.any(Number) });
    expect(pollAfterMs).toBe(2000);
    expect(stats.submissions).toBe(1);
    expect(stats.requests.get('POST /:endpointId/run')).toBe(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/sandbox/run' });
    expect(seen[0].headers).toMatchObject({
      authorization: `Bearer ${SANDBOX_API_KEY}`,
      'content-type': 'application/json',
    });
    expect(stats.lastBodies).toEqual([
      { input: { operation: 'img2vid', ...IMG2VID_INPUT }, policy: { executionTimeout: 3_600_000 } },
    ]);
    await adapter.cancel(job);
    await expect(adapter.poll(ctx, job)).rejects.toThrow('cancelled at the provider');
  });

  it.each<{ task: TaskRequest<RunpodOperation>; timeout: number }>([
    { task: { type: TaskType.Caption, input: CAPTION_INPUT }, timeout: 600_000 },
    { task: { type: TaskType.AddAudio, input: ADDAUDIO_INPUT }, timeout: 300_000 },
  ])('gives $task.type its own execution timeout', async ({ task, timeout }) => {
    const { job } = await submitAsync(adapter, task);
    expect(stats.lastBodies[0]).toEqual({
      input: { operation: task.type, ...task.input },
      policy: { executionTimeout: timeout },
    });
    await adapter.cancel(job);
  });

  it('runs img2vid through IN_PROGRESS to one MP4 per image, priced per GPU second', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.Img2Vid, input: IMG2VID_INPUT });
    const outcomes = await pollToEnd(adapter, ctx, job);

    expect(outcomes.map((o) => o.kind)).toEqual(['running', 'running', 'completed']);
    // IN_PROGRESS on a worker: progress from the execution time against the 15 GPU seconds expected, at least 0.01.
    for (const o of outcomes.slice(0, 2)) {
      expect(o).toEqual({ kind: 'running', progress: expect.any(Number), pollAfterMs: expect.any(Number) });
      if (o.kind === 'running') expect(o.progress).toBeGreaterThanOrEqual(0.01);
      if (o.kind === 'running') expect(o.progress).toBeLessThanOrEqual(0.95);
    }
    const done = outcomes[2];
    if (done.kind !== 'completed') throw new Error('not completed');
    expect(done.output.artifacts).toEqual([
      { url: expect.stringMatching(/\/sandbox\/outputs\//), contentType: 'video/mp4', filename: 'scene-1.mp4' },
      { url: expect.any(String), contentType: 'video/mp4', filename: 'scene-2.mp4' },
    ]);
    const data = done.output.data as { videos: unknown[]; delay_time_ms: number; execution_time_ms: number };
    expect(data.videos).toEqual([
      { id: 'scene-1', video_url: done.output.artifacts[0].url, filename: 'scene-1.mp4' },
      { id: 'scene-2', video_url: done.output.artifacts[1].url, filename: 'scene-2.mp4' },
    ]);
    expect(data.delay_time_ms).toEqual(expect.any(Number));
    expect(data.execution_time_ms).toEqual(expect.any(Number));
    expect(done.cost!.currency).toBe('USD');
    expect(done.cost!.amount).toBeCloseTo((data.execution_time_ms / 1000) * 0.00031, 6);

    for (const artifact of done.output.artifacts) {
      const file = await request(artifact.url!);
      const bytes = Buffer.from(await file.body.arrayBuffer());
      expect(file.headers['content-type']).toBe('video/mp4');
      expect(bytes.subarray(4, 8).toString('ascii')).toBe('ftyp');
    }
    expect(stats.inFlight).toBe(0);
  });

  it('names a caption output after output_filename', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.Caption, input: CAPTION_INPUT });
    const done = (await pollToEnd(adapter, ctx, job)).pop()!;
    expect(done).toMatchObject({
      kind: 'completed',
      output: { artifacts: [{ contentType: 'video/mp4', filename: 'final.mp4' }] },
    });
  });

  it('estimates GPU time: 2 s per second of clip for img2vid, 30 s otherwise', () => {
    expect(adapter.estimateCost({ type: TaskType.Img2Vid, input: IMG2VID_INPUT })).toEqual({
      amount: 0.00465,
      currency: 'USD',
    });
    expect(adapter.estimateCost({ type: TaskType.Caption, input: CAPTION_INPUT })).toEqual({
      amount: 0.0093,
      currency: 'USD',
    });
    expect(adapter.estimateCost({ type: TaskType.AddAudio, input: ADDAUDIO_INPUT })).toEqual({
      amount: 0.0093,
      currency: 'USD',
    });
  });

  it('backs off from 2 s to 5 s as the job ages', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.AddAudio, input: ADDAUDIO_INPUT });
    const fresh = await adapter.poll(ctx, job);
    expect(fresh.kind === 'running' && fresh.pollAfterMs).toBeGreaterThanOrEqual(2000);
    expect(fresh.kind === 'running' && fresh.pollAfterMs).toBeLessThan(2500);
    const old = await adapter.poll(ctx, { ...job, submittedAt: Date.now() - 10 * 60_000 });
    expect(old).toEqual({ kind: 'running', progress: expect.any(Number), pollAfterMs: 5000 });
    await adapter.cancel(job);
  });

  it('re-attaches: a fresh adapter polls a stored job to the end', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.Img2Vid, input: IMG2VID_INPUT });
    await adapter.poll(ctx, job);
    const stored = JSON.parse(JSON.stringify(job)) as ProviderJobRef;
    const fresh = new RunpodAdapter(configFor(baseUrl));
    const done = (await pollToEnd(fresh, ctxFor({ type: TaskType.Img2Vid, input: IMG2VID_INPUT }), stored)).pop()!;
    expect(done).toMatchObject({ kind: 'completed', output: { artifacts: [{}, {}] } });
    // An id alone (no submittedAt) is enough too.
    await expect(fresh.poll(ctx, { id: job.id })).resolves.toMatchObject({ kind: 'completed' });
    expect(stats.submissions).toBe(1);
  });

  it('cancels with POST /cancel: the emulator says CANCELLED and the next poll fails for good', async () => {
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.Caption, input: CAPTION_INPUT });
    expect((await adapter.poll(ctx, job)).kind).toBe('running');
    await adapter.cancel(job);

    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: `/sandbox/cancel/${job.id}` });
    expect(await rawStatus(job.id)).toMatchObject({ id: job.id, status: 'CANCELLED' });
    expect(stats.inFlight).toBe(0);
    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('cancelled at the provider');
    // Unknown to RunPod (404): nothing to stop, no error.
    await expect(adapter.cancel({ id: 'no-such-job' })).resolves.toBeUndefined();
  });

  it('never runs more jobs at once than the endpoint has workers', async () => {
    // An endpoint of its own, so its health counts only these jobs.
    const ownStats = new EmulatorStats();
    const endpoint = createRunpodEmulator({ knobs, stats: ownStats, workers: 3 });
    await endpoint.listen({ port: 0, host: '127.0.0.1' });
    try {
      const own = new RunpodAdapter(configFor(`http://127.0.0.1:${(endpoint.server.address() as AddressInfo).port}`));
      const submitted: { ctx: ProviderContext<RunpodOperation>; job: ProviderJobRef }[] = [];
      for (let i = 0; i < 5; i++) {
        const ctx = ctxFor({ type: TaskType.AddAudio, input: ADDAUDIO_INPUT });
        const started = await own.start(ctx);
        if (started.kind !== 'submitted') throw new Error('runpod jobs are asynchronous');
        submitted.push({ ctx, job: started.job });
      }
      expect(ownStats.submissions).toBe(5);
      expect(ownStats.inFlight).toBe(3);
      // A job waiting IN_QUEUE for a worker reports no progress; one on a worker does.
      const waiting = await own.poll(submitted[4].ctx, submitted[4].job);
      expect(waiting).toEqual({ kind: 'running', pollAfterMs: expect.any(Number) });
      const running = await own.poll(submitted[0].ctx, submitted[0].job);
      expect(running).toEqual({ kind: 'running', progress: 0.01, pollAfterMs: expect.any(Number) });
      expect(await own.health()).toEqual({
        jobs: { completed: 0, failed: 0, inProgress: 3, inQueue: 2, retried: 0 },
        workers: { idle: 0, running: 3 },
      });

      // Round-robin polling, as the platform would: every job completes, never more than 3 at once.
      const pending = new Set(submitted);
      for (let round = 0; round < 10 && pending.size > 0; round++) {
        for (const s of [...pending]) {
          if ((await own.poll(s.ctx, s.job)).kind === 'completed') pending.delete(s);
          expect(ownStats.inFlight).toBeLessThanOrEqual(3);
        }
      }
      expect(pending.size).toBe(0);
      expect(ownStats.maxInFlight).toBe(3);
      expect(ownStats.inFlight).toBe(0);
      expect(await own.health()).toEqual({
        jobs: { completed: 5, failed: 0, inProgress: 0, inQueue: 0, retried: 0 },
        workers: { idle: 3, running: 0 },
      });
    } finally {
      await endpoint.close();
    }
  });

  it('fails a FAILED job for good with the worker’s error', async () => {
    knobs.failureRate = 1;
    const { ctx, job } = await submitAsync(adapter, { type: TaskType.Caption, input: CAPTION_INPUT });
    expect((await adapter.poll(ctx, job)).kind).toBe('running');
    expect((await adapter.poll(ctx, job)).kind).toBe('running');
    const err = await providerError(adapter.poll(ctx, job));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('runpod job failed: Sandbox failure');
    expect(stats.inFlight).toBe(0);
  });

  it('keeps the input error code the media worker puts first, in either error form', async () => {
    const errors: unknown[] = [
      'input_invalid: images[0] (x): not an image ffprobe can read',
      { error_type: 'input_unreachable', error_message: 'url_video answered 404' },
      'input_invalidity: made up',
    ];
    const [server, url] = await stub((req, res) => {
      const error = errors[Number(/job-(\d)/.exec(req.url ?? '')?.[1])];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'job', status: 'FAILED', error }));
    });
    try {
      const other = new RunpodAdapter(configFor(url));
      const ctx = ctxFor({
        type: TaskType.Img2Vid,
        input: { images: [{ id: 'x', image_url: 'https://example.com/x', duracao: 1 }] },
      });
      const codes = [];
      for (const n of [0, 1, 2]) codes.push(await providerError(other.poll(ctx, { id: `job-${n}` })));
      expect(codes.map((e) => [e.code, e.retryable])).toEqual([
        [ProviderErrorCode.InputInvalid, false],
        [ProviderErrorCode.InputUnreachable, false],
        [ProviderErrorCode.JobFailed, false],
      ]);
      expect(codes[1].message).toBe('runpod job failed: url_video answered 404');
    } finally {
      server.close();
    }
  });

  it('treats an expired job (404 on status) as gone for good', async () => {
    const err = await providerError(
      adapter.poll(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT }), { id: 'expired-job' }),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.NotFound, retryable: false, status: 404 });
    expect(err.message).toMatch(/job expired/);
  });

  it('fails a bad key for good (401)', async () => {
    const wrong = new RunpodAdapter(configFor(baseUrl, { RUNPOD_API_KEY: 'rpa_wrong' }));
    const err = await providerError(wrong.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
    expect(stats.submissions).toBe(0);
  });

  it('fails an unknown endpoint for good (404)', async () => {
    const other = new RunpodAdapter(configFor(baseUrl, { RUNPOD_ENDPOINT_ID: 'other' }));
    const err = await providerError(other.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.NotFound, retryable: false, status: 404 });
  });

  it('retries a 429 after Retry-After', async () => {
    knobs.rateLimitRate = 1;
    const err = await providerError(adapter.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
    expect(err).toMatchObject({
      code: ProviderErrorCode.RateLimited,
      retryable: true,
      retryAfterMs: 1000,
      status: 429,
    });
    expect(stats.submissions).toBe(0);
  });

  it('retries a 500, and a job that TIMED_OUT', async () => {
    const [server, url] = await stub((req, res) => {
      if (req.url?.includes('/status/')) {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: 'j', status: 'TIMED_OUT' }));
      } else {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'worker crashed' }));
      }
    });
    try {
      const broken = new RunpodAdapter(configFor(url));
      const err = await providerError(broken.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
      expect(err.message).toContain('worker crashed');
      const timedOut = await providerError(
        broken.poll(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT }), { id: 'j' }),
      );
      expect(timedOut).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    } finally {
      server.close();
    }
  });

  it('retries when runpod cannot be reached', async () => {
    const [server, url] = await stub(() => undefined);
    await new Promise((resolve) => server.close(resolve));
    const unreachable = new RunpodAdapter(configFor(url));
    const err = await providerError(unreachable.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.Network, retryable: true });
  });

  it('retries when runpod answers too slowly', async () => {
    knobs.latencyMs = 800;
    const slow = new RunpodAdapter(configFor(baseUrl, { PROVIDER_HTTP_TIMEOUT_MS: '150' }));
    const err = await providerError(slow.start(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT })));
    expect(err).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    // The emulator drops a request its client gave up on: no job was queued behind the adapter's back.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stats.submissions).toBe(0);
  });

  it('emulator: takes the bare key, fails an unknown operation, and marks answers as sandbox', async () => {
    const run = await request(`${baseUrl}/sandbox/run`, {
      method: 'POST',
      headers: { authorization: SANDBOX_API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { operation: 'transmogrify' } }),
    });
    expect(run.statusCode).toBe(200);
    expect(run.headers['x-sandbox']).toBe('true');
    const { id, status } = (await run.body.json()) as { id: string; status: string };
    expect(status).toBe('IN_QUEUE');
    expect(await rawStatus(id)).toMatchObject({ id, status: 'FAILED', error: 'unknown operation' });

    const err = await providerError(adapter.poll(ctxFor({ type: TaskType.Caption, input: CAPTION_INPUT }), { id }));
    expect(err).toMatchObject({ code: ProviderErrorCode.JobFailed, retryable: false });
    expect(err.message).toBe('runpod job failed: unknown operation');

    const badPolicy = await request(`${baseUrl}/sandbox/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SANDBOX_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ input: { operation: 'caption' }, policy: { executionTimeout: 10 } }),
    });
    expect(badPolicy.statusCode).toBe(400);
    expect(((await badPolicy.body.json()) as { error: string }).error).toContain('executionTimeout');
  });
});
