import { rm } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { QueueGateway } from '../src/queue/queue.gateway';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';

const BASE = '/api/v1/media';
const FAST = { PROVIDER_POLL_SCALE: '0.02' };
/** 3 s of audio at the emulator's 16 kB a second. */
const AUDIO_BYTES = 48_000;

/** The user's audio: bytes the platform downloads and uploads to AssemblyAI. */
async function audioServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/talk.mp3')
      return void res.writeHead(200, { 'content-type': 'audio/mpeg' }).end(Buffer.alloc(AUDIO_BYTES, 7));
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

async function untilSubmitted(t: TestApp, id: string): Promise<{ id: string }> {
  return (await t.waitForProviderJob(id)) as { id: string };
}

describe('sandbox: Runway text to video and AssemblyAI transcripts end to end', () => {
  let t: TestApp;
  let audio: { server: Server; url: string };

  beforeAll(async () => {
    audio = await audioServer();
    t = await TestApp.start({ sandbox: { knobs: { asyncSteps: 2 }, runpodExecution: 'simulated' }, env: FAST });
  });
  afterAll(async () => {
    await t.close();
    audio.server.close();
  });

  async function submit(path: string, body: Record<string, unknown>): Promise<string> {
    const res = await t.request('POST', `${BASE}/${path}`, { body });
    expect([res.status, res.body.message]).toEqual([202, undefined]);
    return res.body.id as string;
  }

  const finished = (x: { status: string }) => x.status === 'completed' || x.status === 'failed';

  it('lists both providers, configured, with their task types and prices', async () => {
    const res = await t.request('GET', `${BASE}/providers`);
    expect(res.status).toBe(200);
    const byName = new Map(res.body.data.map((p: { name: string }) => [p.name, p]));
    expect(byName.get('assemblyai')).toMatchObject({
      task_types: ['audio_transcription'],
      configured: true,
      quality_score: 0.85,
      cost_model: expect.stringContaining('universal-3-pro $0.21/h'),
    });
    expect(byName.get('runway')).toMatchObject({
      task_types: ['video_generation', 'image_generation'],
      configured: true,
      cost_model: expect.stringContaining('gen4.5 $0.12'),
    });
  });

  it('makes a video from a prompt alone through Runway’s text_to_video, priced as gen4.5', async () => {
    const id = await submit('videos/generate', { prompt: 'a fox running through snow', duration: 4 });
    const task = await t.waitForTask(id, finished, 15000);
    expect([task.status, task.provider, task.error]).toEqual(['completed', 'runway', null]);
    expect(task.output).toMatchObject({ model: 'gen4.5', sandbox: true });
    expect(task.cost).toEqual({ amount: 0.48, currency: 'USD' });
    const res = await fetch(`${t.baseUrl}${task.output.files[0].url}`);
    const mp4 = Buffer.from(await res.arrayBuffer());
    expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
    const runway = t.sandbox!.stats.runway;
    expect(runway.requests.get('POST /v1/text_to_video')).toBe(1);
    expect(runway.requests.get('POST /v1/image_to_video')).toBeUndefined();
  });

  it('refuses at submit a prompt-only video on a model that needs a start image (400 naming image_url)', async () => {
    const res = await t.request('POST', `${BASE}/videos/generate`, {
      body: { prompt: 'waves', provider: 'runway', model: 'gen4_turbo' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(['image_url']);
  });

  it('transcribes with AssemblyAI when pinned, and keeps its SRT', async () => {
    const id = await submit('audio/transcribe', {
      audio_url: `${audio.url}/talk.mp3`,
      provider: 'assemblyai',
      response_format: 'srt',
      language: 'en',
    });
    const task = await t.waitForTask(id, finished, 15000);
    expect([task.status, task.provider, task.error]).toEqual(['completed', 'assemblyai', null]);
    expect(task.output).toMatchObject({
      format: 'srt',
      model: 'universal-3-pro',
      language: 'en',
      duration_s: 3,
      text: expect.stringContaining(`sandbox transcript of ${AUDIO_BYTES} bytes`),
      sandbox: true,
    });
    expect(task.cost).toEqual({ amount: 0.000175, currency: 'USD' });
    const [file] = task.output.files;
    expect(file).toMatchObject({ content_type: 'application/x-subrip', filename: 'transcript.srt' });
    const srt = await (await fetch(`${t.baseUrl}${file.url}`)).text();
    expect(srt).toMatch(/^1\n00:00:00,000 --> 00:00:0\d,\d{3}\nThis is a sandbox transcript/);
    const stats = t.sandbox!.stats.assemblyai;
    expect(stats.requests.get('POST /v2/upload')).toBe(1);
    expect(stats.requests.get('GET /v2/transcript/:id/:format')).toBe(1);
    // Polled as delayed steps: queued, processing, completed.
    expect(stats.requests.get('GET /v2/transcript/:id')).toBe(3);
  });

  it('routes to AssemblyAI by itself what only it can do (speaker labels), and when cost decides', async () => {
    const labelled = await submit('audio/transcribe', { audio_url: `${audio.url}/talk.mp3`, speaker_labels: true });
    const cheap = await submit('audio/transcribe', { audio_url: `${audio.url}/talk.mp3`, strategy: 'cost' });
    const [a, b] = await Promise.all([labelled, cheap].map((id) => t.waitForTask(id, finished, 15000)));
    expect([a.status, a.provider]).toEqual(['completed', 'assemblyai']);
    expect(a.output.utterances.map((u: { speaker: string }) => u.speaker)).toEqual(['A', 'B']);
    expect([b.status, b.provider]).toEqual(['completed', 'assemblyai']);

    const pinned = await t.request('POST', `${BASE}/audio/transcribe`, {
      body: { audio_url: `${audio.url}/talk.mp3`, provider: 'openai-whisper', speaker_labels: true },
    });
    expect(pinned.status).toBe(400);
    expect(pinned.body.errors.map((e: { field: string }) => e.field)).toEqual(['speaker_labels']);
  });
});

describe('sandbox: an AssemblyAI transcript outlives the worker that submitted it', () => {
  it('is polled to the end by the next worker, with one upload and one transcript', async () => {
    const audio = await audioServer();
    const database = await createTestDatabase();
    const redisPrefix = `aai${process.pid}`;
    const env = { ...FAST, RECONCILE_INTERVAL_MS: '300', RECONCILE_GRACE_MS: '200' };
    const first = await TestApp.start({
      database,
      redisPrefix,
      sandbox: { knobs: { asyncSteps: 1000 }, runpodExecution: 'simulated' },
      env,
    });
    const sandbox = first.sandbox!;
    let second: TestApp | undefined;
    try {
      const res = await first.request('POST', `${BASE}/audio/transcribe`, {
        body: { audio_url: `${audio.url}/talk.mp3`, provider: 'assemblyai', response_format: 'vtt' },
      });
      expect(res.status).toBe(202);
      const id = res.body.id as string;
      const job = await untilSubmitted(first, id);
      // The worker process dies, and its queue job with it.
      await first.app.get(QueueGateway).removeTaskJob(id);
      await first.app.close();
      sandbox.knobs.asyncSteps = 1;
      second = await TestApp.start({ database, redisPrefix, sandbox, env });
      const task = await second.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 15000);
      expect([task.status, task.provider, task.output.assemblyai_transcript_id]).toEqual([
        'completed',
        'assemblyai',
        job.id,
      ]);
      expect(task.output.files[0]).toMatchObject({ content_type: 'text/vtt' });
      expect(sandbox.stats.assemblyai.submissions).toBe(1);
      expect(sandbox.stats.assemblyai.requests.get('POST /v2/upload')).toBe(1);
    } finally {
      await second?.close();
      await sandbox.close();
      audio.server.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
      // The first instance was closed as a crash (its app only), so its folders are not released by close().
      for (const dir of [first.config.storage.localDir, first.config.cache.dir]) {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});
