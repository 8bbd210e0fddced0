import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { QueueGateway } from '../src/queue/queue.gateway';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, freePort, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { mediaServer } from './support/media-server';

const BASE = '/api/v1/media';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const FAST = { PROVIDER_POLL_SCALE: '0.02' };

/** ffprobe's view of a file: codec and kind of each stream, and the container's duration. */
function probe(file: string): { streams: { codec_name: string; codec_type: string }[]; format: { duration: string } } {
  const args = ['-v', 'error', '-show_entries', 'stream=codec_name,codec_type:format=duration', '-of', 'json', file];
  return JSON.parse(execFileSync('ffprobe', args).toString()) as ReturnType<typeof probe>;
}

describe('sandbox: every task type end to end through the provider emulators', () => {
  let t: TestApp;
  let media: { server: Server; url: string };
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-spec-'));

  beforeAll(async () => {
    media = await mediaServer(dir);
    t = await TestApp.start({ sandbox: { knobs: { asyncSteps: 2 } }, env: { ...FAST, RUNPOD_MAX_CONCURRENCY: '2' } });
  });
  afterAll(async () => {
    await t.close();
    media.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function submit(path: string, body: Record<string, unknown>): Promise<string> {
    const res = await t.request('POST', `${BASE}/${path}`, { body });
    expect([res.status, res.body.message]).toEqual([202, undefined]);
    return res.body.id as string;
  }

  async function fetchFile(url: string): Promise<Buffer> {
    const res = await fetch(url.startsWith('http') ? url : `${t.baseUrl}${url}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  it('generates an image, keeps our copy of it, and prices it', async () => {
    const id = await submit('images/generate', { prompt: 'a lighthouse at dawn', quality: 'hd' });
    const task = await t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed');
    expect(task.status).toBe('completed');
    expect(task.provider).toBe('openai-images');
    expect(task.output.sandbox).toBe(true);
    expect(task.cost).toEqual({ amount: 0.08, currency: 'USD' });
    const [file] = task.output.files;
    expect(file).toMatchObject({ content_type: 'image/png', filename: 'image-1.png' });
    const png = await fetchFile(file.url);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(png.length).toBe(file.size_bytes);
  });

  it('runs the same image on Stability when pinned, and a video on Runway asynchronously', async () => {
    const image = await submit('images/generate', { prompt: 'a red fox', provider: 'stability', size: '1024x1792' });
    const video = await submit('videos/generate', {
      prompt: 'waves',
      image_url: `${media.url}/frame.png`,
      duration: 5,
    });
    const imageTask = await t.waitForTask(image, (x) => x.status === 'completed' || x.status === 'failed');
    expect([imageTask.status, imageTask.provider]).toEqual(['completed', 'stability']);
    expect(imageTask.output.aspect_ratio).toBe('9:16');
    const videoTask = await t.waitForTask(video, (x) => x.status === 'completed' || x.status === 'failed', 15000);
    expect([videoTask.status, videoTask.provider]).toEqual(['completed', 'runway']);
    expect(videoTask.cost).toEqual({ amount: 0.25, currency: 'USD' });
    const mp4 = await fetchFile(videoTask.output.files[0].url);
    expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(t.sandbox!.stats.runway.submissions).toBe(1);
  });

  it('translates subtitles through OpenAI when target_language differs from the text’s, and only then', async () => {
    const text = 'Hello there. This is the sandbox speaking, with subtitles for everyone.';
    const translated = await submit('subtitles/generate', { text, target_language: 'pt', format: 'srt' });
    const labelled = await submit('subtitles/generate', {
      text,
      target_language: 'en',
      source_language: 'en',
      format: 'srt',
    });
    const plain = await submit('subtitles/generate', { text, format: 'srt' });
    const [a, b, c] = await Promise.all(
      [translated, labelled, plain].map((id) =>
        t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed'),
      ),
    );
    expect([a.status, a.provider]).toEqual(['completed', 'openai-subtitles']);
    expect(a.output).toMatchObject({ language: 'pt', source_language: 'en', translated: true, sandbox: true });
    expect(a.output.content).toContain('[pt] Hello there.');
    expect(a.cost.amount).toBeGreaterThan(0);
    // The engine alone when nothing is to be translated, at no cost; the translation keeps the engine's timing.
    expect([b.provider, c.provider]).toEqual(['subtitle-engine', 'subtitle-engine']);
    expect(c.cost).toEqual({ amount: 0, currency: 'USD' });
    const times = (srt: string) => [...srt.matchAll(/^(\d\d:\d\d:\d\d,\d{3}) --> /gm)].map((m) => m[1]);
    expect(times(a.output.content)).toEqual(expect.arrayContaining(times(c.output.content)));
    const srt = (await fetchFile(a.output.files[0].url)).toString('utf8');
    expect(srt).toBe(a.output.content);
    expect(t.sandbox!.stats.openai.requests.get('POST /v1/chat/completions')).toBe(1);
  });

  it('runs a Pika video pinned to fal through its queue, showing the queue position on the way', async () => {
    const knobs = t.sandbox!.knobs;
    Object.assign(knobs, { asyncSteps: 5, latencyMs: 30 });
    try {
      const id = await submit('videos/generate', { prompt: 'a paper boat on a pond', provider: 'fal', duration: 5 });
      // The task's queue_position while fal holds it in its queue: read as a client would, until the task ends.
      const positions: number[] = [];
      const look = async () => {
        const seen = (await t.request('GET', `${BASE}/tasks/${id}`)).body;
        if (seen.status === 'processing' && typeof seen.queue_position === 'number') {
          if (positions.at(-1) !== seen.queue_position) positions.push(seen.queue_position);
        }
        return seen;
      };
      const task = await waitUntil('the task to end', look, {
        timeoutMs: 15000,
        intervalMs: 10,
        until: (x) => x.status === 'completed' || x.status === 'failed',
      });
      expect([task.status, task.provider]).toEqual(['completed', 'fal']);
      expect(positions.length).toBeGreaterThanOrEqual(2);
      expect(positions).toEqual([...positions].sort((x, y) => y - x));
      expect(positions.every((p) => p >= 1 && p <= 6)).toBe(true);
      expect(task.queue_position).toBeUndefined();
      expect(task.cost).toEqual({ amount: 0.2, currency: 'USD' });
      expect(task.output).toMatchObject({ model: 'fal-ai/pika/v2.2/text-to-video', sandbox: true });
      const mp4 = await fetchFile(task.output.files[0].url);
      expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
      expect(t.sandbox!.stats.fal.submissions).toBe(1);
    } finally {
      Object.assign(knobs, { asyncSteps: 2, latencyMs: 0 });
    }
  });

  it('lists the translating and the fal providers, configured in the sandbox', async () => {
    const res = await t.request('GET', `${BASE}/providers`);
    const byName = Object.fromEntries(res.body.data.map((p: { name: string }) => [p.name, p]));
    expect(byName['openai-subtitles']).toMatchObject({ task_types: ['subtitle_generation'], configured: true });
    expect(byName.fal).toMatchObject({
      task_types: ['video_generation', 'image_generation'],
      configured: true,
      cost_model: expect.stringContaining('Pika'),
    });
  });

  it('transcribes downloaded audio with Whisper, in the requested format', async () => {
    const id = await submit('audio/transcribe', { audio_url: `${media.url}/talk.mp3`, response_format: 'srt' });
    const task = await t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed');
    expect([task.status, task.provider]).toEqual(['completed', 'openai-whisper']);
    expect(task.output.format).toBe('srt');
    expect(task.output.text).toEqual(expect.any(String));
    const srt = (await fetchFile(task.output.files[0].url)).toString('utf8');
    expect(srt).toMatch(/^1\r?\n\d\d:\d\d:\d\d,\d{3} --> /);
  });

  it('fails a transcription whose audio_url answers 404 with input_unreachable', async () => {
    const id = await submit('audio/transcribe', { audio_url: `${media.url}/missing.mp3` });
    const task = await t.waitForTask(id, (x) => x.status === 'failed');
    expect(task.error.code).toBe('input_unreachable');
    expect(task.attempts).toBe(1);
  });

  it('fails a RunPod img2vid whose image is not a picture with input_invalid, as local ffmpeg would', async () => {
    const id = await submit('videos/img2vid', {
      provider: 'runpod',
      images: [{ id: 'srt', image_url: `${media.url}/v.srt`, duracao: 1 }],
    });
    const task = await t.waitForTask(id, (x) => x.status === 'failed', 30000);
    expect(task.error.code).toBe('input_invalid');
    expect(task.error.message).toMatch(/images\[0\] \(srt\)/);
    expect(task.attempts).toBe(1);
  });

  it('runs img2vid, caption and addaudio on RunPod, one clip per image in input order', async () => {
    expect(t.sandbox!.runpodExecution).toBe('ffmpeg');
    // Pinned: ffmpeg-local could run them too, and this is about the RunPod path.
    const img2vid = await submit('videos/img2vid', {
      provider: 'runpod',
      images: [
        { id: 'a', image_url: `${media.url}/frame.png`, duracao: 2 },
        { id: 'b', image_url: `${media.url}/frame.png`, duracao: 3 },
      ],
    });
    const caption = await submit('videos/caption', {
      provider: 'runpod',
      url_video: `${media.url}/v.mp4`,
      url_srt: `${media.url}/v.srt`,
    });
    const addaudio = await submit('videos/addaudio', {
      provider: 'runpod',
      url_video: `${media.url}/v.mp4`,
      url_audio: `${media.url}/talk.mp3`,
      output_filename: 'final.mp4',
    });
    const [a, b, c] = await Promise.all(
      [img2vid, caption, addaudio].map((id) =>
        t.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 60000),
      ),
    );
    expect([a.status, b.status, c.status]).toEqual(['completed', 'completed', 'completed']);
    expect(a.provider).toBe('runpod');
    expect(a.output.videos.map((v: { id: string }) => v.id)).toEqual(['a', 'b']);
    expect(a.output.files.map((f: { filename: string }) => f.filename)).toEqual(['a.mp4', 'b.mp4']);
    expect(c.output.files[0].filename).toBe('final.mp4');
    expect(t.sandbox!.stats.runpod.maxInFlight).toBeLessThanOrEqual(2);

    // Real videos, made by the same ffmpeg code as the local provider.
    const probed = async (url: string, name: string) => {
      const file = join(dir, name);
      writeFileSync(file, await fetchFile(url));
      return probe(file);
    };
    for (const [n, seconds] of [2, 3].entries()) {
      const clip = await probed(a.output.files[n].url, `clip-${n}.mp4`);
      expect(clip.streams.map((s) => s.codec_name)).toEqual(['h264']);
      expect(Math.abs(Number(clip.format.duration) - seconds)).toBeLessThanOrEqual(0.1);
    }
    const captioned = await probed(b.output.files[0].url, 'captioned.mp4');
    expect(captioned.streams.map((s) => s.codec_type)).toEqual(['video']);
    expect(Number(captioned.format.duration)).toBeGreaterThan(1.5);
    const withAudio = await probed(c.output.files[0].url, 'final.mp4');
    expect(withAudio.streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
  }, 90000);

  it('refuses at submit what the chosen model cannot do (400 naming the field)', async () => {
    const res = await t.request('POST', `${BASE}/images/generate`, {
      body: { prompt: 'x', provider: 'openai-images', model: 'dall-e-3', n: 2 },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].field).toBe('n');
    const long = await t.request('POST', `${BASE}/images/generate`, {
      body: { prompt: 'x'.repeat(1500), model: 'dall-e-2' },
    });
    expect(long.status).toBe(400);
    expect(long.body.message).toContain('prompt');
  });

  it('cancels a job stuck at the provider, at the provider too', async () => {
    t.sandbox!.knobs.stuckRate = 1;
    try {
      const id = await submit('videos/addaudio', { url_video: `${media.url}/v.mp4`, url_audio: `${media.url}/a.mp3` });
      await t.waitForTask(id, (x) => x.status === 'processing' && x.progress >= 0, 5000);
      const job = (await t.waitForProviderJob(id)) as { id: string };
      const res = await t.request('POST', `${BASE}/tasks/${id}/cancel`);
      expect(res.status).toBe(200);
      const status = await fetch(`${t.sandbox!.env.RUNPOD_BASE_URL}/sandbox/status/${job.id}`, {
        headers: { authorization: `Bearer ${t.sandbox!.env.RUNPOD_API_KEY}` },
      });
      expect(((await status.json()) as { status: string }).status).toBe('CANCELLED');
    } finally {
      t.sandbox!.knobs.stuckRate = 0;
    }
  });

  it('stops the provider job of a task the reconciler times out', async () => {
    t.sandbox!.knobs.stuckRate = 1;
    try {
      const id = await submit('videos/addaudio', { url_video: `${media.url}/v.mp4`, url_audio: `${media.url}/a.mp3` });
      const job = (await t.waitForProviderJob(id)) as { id: string };
      // Its worker vanished long ago: the task is past its timeout with no one polling it.
      await t.app.get(QueueGateway).removeTaskJob(id);
      await t.dataSource.query(
        `UPDATE tasks SET started_at = now() - interval '1 day', updated_at = now() - interval '1 day' WHERE id = $1`,
        [id],
      );
      // The reconciler fails it (or the worker's own next step does, if it held the job): either way, through abandon().
      await t.app.get(ReconcilerProcessor).reconcile();
      expect((await t.waitForTask(id, (x) => x.status === 'failed')).error.code).toBe('timeout');
      const status = await fetch(`${t.sandbox!.env.RUNPOD_BASE_URL}/sandbox/status/${job.id}`, {
        headers: { authorization: `Bearer ${t.sandbox!.env.RUNPOD_API_KEY}` },
      });
      expect(((await status.json()) as { status: string }).status).toBe('CANCELLED');
    } finally {
      t.sandbox!.knobs.stuckRate = 0;
    }
  });

  it('lets admins turn the sandbox knobs', async () => {
    expect((await t.request('PATCH', '/api/v1/sandbox/knobs', { body: { latencyMs: 5 } })).status).toBe(403);
    const res = await t.request('PATCH', '/api/v1/sandbox/knobs', {
      body: { latencyMs: 5, clipMs: 7 },
      token: t.token('root', { admin: true }),
    });
    expect(res.status).toBe(200);
    expect([res.body.knobs.latencyMs, res.body.knobs.clipMs]).toEqual([5, 7]);
    expect([t.sandbox!.knobs.latencyMs, t.sandbox!.knobs.clipMs]).toEqual([5, 7]);
    // What the emulators counted: RunPod jobs accepted, out now (queued or running) and the most out at once.
    expect(res.body.providers.runpod).toMatchObject({
      submissions: expect.any(Number),
      outstanding: expect.any(Number),
      max_outstanding: expect.any(Number),
    });
    const runpod = res.body.providers.runpod;
    expect(runpod.max_outstanding).toBeGreaterThanOrEqual(runpod.outstanding);
    t.sandbox!.knobs.latencyMs = 0;
    t.sandbox!.knobs.clipMs = 0;
  });
});

describe('sandbox: a worker that dies after submitting re-attaches instead of submitting again', () => {
  it('completes the provider job it had started, with exactly one submission', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `reattach${process.pid}`;
    const first = await TestApp.start({
      database,
      redisPrefix,
      // The image URL leads nowhere: this is about re-attaching, not about the video.
      sandbox: { knobs: { asyncSteps: 1000 }, runpodExecution: 'simulated' },
      env: { ...FAST, RECONCILE_INTERVAL_MS: '300', RECONCILE_GRACE_MS: '200' },
    });
    const sandbox = first.sandbox!;
    let second: TestApp | undefined;
    try {
      const res = await first.request('POST', `${BASE}/videos/img2vid`, {
        body: { images: [{ id: 'only', image_url: 'http://127.0.0.1:9/x.png', duracao: 1 }] },
      });
      expect(res.status).toBe(202);
      const id = res.body.id as string;
      await first.waitForProviderJob(id);
      // The worker process dies, and its queue job with it.
      await first.app.get(QueueGateway).removeTaskJob(id);
      await first.app.close();
      expect(sandbox.stats.runpod.submissions).toBe(1);
      sandbox.knobs.asyncSteps = 1;
      second = await TestApp.start({
        database,
        redisPrefix,
        sandbox,
        env: { ...FAST, RECONCILE_INTERVAL_MS: '300', RECONCILE_GRACE_MS: '200' },
      });
      const task = await second.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 15000);
      expect(task.status).toBe('completed');
      expect(task.output.videos).toEqual([expect.objectContaining({ id: 'only' })]);
      expect(sandbox.stats.runpod.submissions).toBe(1);
    } finally {
      await second?.close();
      await sandbox.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
      // The first instance was closed as a crash (its app only), so its folders are not released by close().
      for (const dir of [first.config.storage.localDir, first.config.cache.dir])
        await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sandbox: RunPod calls the platform back when a job ends (PUBLIC_URL)', () => {
  let t: TestApp;

  beforeAll(async () => {
    const port = await freePort();
    t = await TestApp.start({
      port,
      // Polls five times slower than the real ones (10 s for a fresh job): only the callback can end the task sooner,
      // with room for a busy machine.
      env: { PUBLIC_URL: `http://127.0.0.1:${port}`, PROVIDER_POLL_SCALE: '5' },
      sandbox: { runpodExecution: 'simulated', knobs: { asyncSteps: 0, clipMs: 100 } },
    });
  });
  afterAll(() => t.close());

  it('picks a finished job up at once instead of at its next poll, and refuses an unsigned callback', async () => {
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', {
      body: { provider: 'runpod', images: [{ id: 'a', image_url: 'https://example.com/a.png', duracao: 1 }] },
    });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed', 15000);
    expect(Date.parse(task.completed_at) - Date.parse(task.created_at)).toBeLessThan(5000);
    expect(t.sandbox!.stats.runpod.requests.get('POST webhook')).toBe(1);
    expect(t.sandbox!.stats.runpod.requests.get('GET /:endpointId/status/:id') ?? 0).toBeLessThanOrEqual(2);
    // The callback's URL is signed per task: a made-up one is a 404, and does nothing.
    const forged = await fetch(`${t.baseUrl}/api/v1/providers/runpod/callbacks/${res.body.id}?sig=forged`, {
      method: 'POST',
    });
    expect(forged.status).toBe(404);
  });
});
