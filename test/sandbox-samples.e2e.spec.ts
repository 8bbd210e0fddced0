import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleFiles } from '../sandbox/samples';
import { TestApp } from './support/test-app';

const SAMPLES = '/api/v1/sandbox/samples';
const BASE = '/api/v1/media';

/** ffprobe's view of a file: codec and kind of each stream, and the container's duration. */
function probe(bytes: Buffer): { streams: { codec_type: string }[]; format: { duration: string } } {
  const dir = mkdtempSync(join(tmpdir(), 'samples-probe-'));
  try {
    const file = join(dir, 'file');
    writeFileSync(file, bytes);
    const args = ['-v', 'error', '-show_entries', 'stream=codec_type:format=duration', '-of', 'json', file];
    return JSON.parse(execFileSync('ffprobe', args).toString()) as ReturnType<typeof probe>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('sandbox sample media: a new user runs every task type that reads a file, with no file of their own', () => {
  let t: TestApp;

  beforeAll(async () => {
    // As a fresh `npm start` has it: no PUBLIC_URL, private addresses refused to the platform and the emulators alike.
    t = await TestApp.start({
      sandbox: { allowPrivateAddresses: false },
      env: { WEBHOOK_ALLOW_PRIVATE: 'false', PROVIDER_POLL_SCALE: '0.02' },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function fetchFile(url: string): Promise<Buffer> {
    const res = await fetch(url.startsWith('http') ? url : `${t.baseUrl}${url}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  it('tells a client the sandbox is on, and which samples it has', async () => {
    const res = await t.request('GET', SAMPLES);
    expect([res.status, res.body]).toEqual([200, { kinds: ['image', 'video', 'audio', 'subtitles'] }]);
    expect((await t.request('GET', SAMPLES, { token: null })).status).toBe(401);
  });

  it('stores genuine files as uploads of the caller: a PNG, an MP4, a WAV of 3 s and an SRT within it', async () => {
    const res = await t.request('POST', SAMPLES, { as: 'newcomer' });
    expect(res.status).toBe(201);
    const files = sampleFiles();
    for (const [kind, contentType] of [
      ['image', 'image/png'],
      ['video', 'video/mp4'],
      ['audio', 'audio/wav'],
      ['subtitles', 'application/x-subrip'],
    ] as const) {
      const upload = res.body[kind];
      expect([kind, upload]).toEqual([
        kind,
        expect.objectContaining({
          url: `upload:${upload.id}`,
          content_type: contentType,
          size: files[kind].bytes.length,
          sha256: sha256(files[kind].bytes),
          filename: files[kind].filename,
        }),
      ]);
      const mine = await t.request('GET', `${BASE}/uploads/${upload.id}`, { as: 'newcomer' });
      expect([kind, mine.status]).toEqual([kind, 200]);
      expect([kind, (await t.request('GET', `${BASE}/uploads/${upload.id}`, { as: 'bob' })).status]).toEqual([
        kind,
        404,
      ]);
    }
    // Files a player and ffmpeg read as what they claim to be.
    const audio = probe(files.audio.bytes);
    expect(audio.streams.map((s) => s.codec_type)).toEqual(['audio']);
    expect(Number(audio.format.duration)).toBeCloseTo(3, 2);
    expect(probe(files.video.bytes).streams.map((s) => s.codec_type)).toEqual(['video']);
    const ends = [...files.subtitles.bytes.toString('utf8').matchAll(/--> (\d\d):(\d\d):(\d\d),(\d{3})/g)].map(
      ([, h, m, s, ms]) => Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000,
    );
    expect(ends.length).toBe(3);
    expect(Math.max(...ends)).toBeLessThanOrEqual(3);
    // New uploads on every call.
    const again = await t.request('POST', SAMPLES, { as: 'newcomer' });
    expect(again.body.image.id).not.toBe(res.body.image.id);
  });

  it('runs a transcription, an img2vid, a caption, an addaudio and an image edit on them, each to completed', async () => {
    const samples = (await t.request('POST', SAMPLES, { as: 'newcomer' })).body;
    const submissions: [string, Record<string, unknown>][] = [
      ['audio/transcribe', { audio_url: samples.audio.url }],
      ['videos/img2vid', { images: [{ id: 'a', image_url: samples.image.url, duracao: 1 }] }],
      ['videos/caption', { url_video: samples.video.url, url_srt: samples.subtitles.url }],
      ['videos/addaudio', { url_video: samples.video.url, url_audio: samples.audio.url }],
      ['images/edit', { operation: 'stencil', image_url: samples.image.url }],
    ];
    const ids: string[] = [];
    for (const [route, body] of submissions) {
      const res = await t.request('POST', `${BASE}/${route}`, { as: 'newcomer', body });
      expect([route, res.status, res.body.message]).toEqual([route, 202, undefined]);
      ids.push(res.body.id as string);
    }
    const tasks = await Promise.all(
      ids.map((id) => t.waitForTask(id, (x) => ['completed', 'failed'].includes(x.status), 30_000)),
    );
    expect(tasks.map((x) => [x.type, x.status, x.error?.message])).toEqual([
      ['audio_transcription', 'completed', undefined],
      ['img2vid', 'completed', undefined],
      ['caption', 'completed', undefined],
      ['addaudio', 'completed', undefined],
      ['image_edit', 'completed', undefined],
    ]);
    // The video tasks ran on the worker's ffmpeg: RunPod fetches its inputs and could not reach the uploads here.
    expect(tasks.map((x) => x.provider)).toEqual([
      expect.any(String),
      'ffmpeg-local',
      'ffmpeg-local',
      'ffmpeg-local',
      'image-local',
    ]);
    const [, img2vid, caption, addaudio, edit] = tasks;
    // The videos are real ones; the one with sound added has it.
    for (const task of [img2vid, caption]) {
      expect(probe(await fetchFile(task.output.files[0].url)).streams.map((s) => s.codec_type)).toContain('video');
    }
    expect(
      probe(await fetchFile(addaudio.output.files[0].url))
        .streams.map((s) => s.codec_type)
        .sort(),
    ).toEqual(['audio', 'video']);
    const stencil = await fetchFile(edit.output.files[0].url);
    expect(stencil.subarray(1, 4).toString('latin1')).toBe('PNG');
  });

  it('refuses at submit, naming the field, a sample only a provider that fetches its inputs could take', async () => {
    const samples = (await t.request('POST', SAMPLES, { as: 'newcomer' })).body;
    const res = await t.request('POST', `${BASE}/videos/generate`, {
      as: 'newcomer',
      body: { prompt: 'waves', image_url: samples.image.url },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'image_url', message: expect.stringContaining('set PUBLIC_BASE_URL (or PUBLIC_URL)') },
    ]);
  });

  it("keeps the samples the caller's own: another user's task naming them is refused with 400", async () => {
    const samples = (await t.request('POST', SAMPLES, { as: 'newcomer' })).body;
    const res = await t.request('POST', `${BASE}/audio/transcribe`, {
      as: 'bob',
      body: { audio_url: samples.audio.url },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'audio_url', message: `audio_url: ${samples.audio.url} is not an upload of yours` },
    ]);
  });

  it('serves API keys with the tasks scope, as their owner, and refuses keys without it', async () => {
    const admin = t.token('admin', { admin: true });
    const keyOf = async (scopes: string[]) => {
      const res = await t.request('POST', '/api/v1/api-keys', {
        token: admin,
        body: { owner: 'keyholder', name: scopes.join('+'), scopes },
      });
      expect(res.status).toBe(201);
      return res.body.key as string;
    };
    const tasksKey = await keyOf(['tasks']);
    const created = await t.request('POST', SAMPLES, { token: null, headers: { 'x-api-key': tasksKey } });
    expect(created.status).toBe(201);
    const owned = await t.request('GET', `${BASE}/uploads/${created.body.video.id}`, { as: 'keyholder' });
    expect(owned.status).toBe(200);

    const queueKey = await keyOf(['queue:read']);
    const refused = await t.request('POST', SAMPLES, { token: null, headers: { 'x-api-key': queueKey } });
    expect([refused.status, refused.body.message]).toEqual([403, expect.stringContaining('tasks')]);
  });
});

describe('sandbox sample media with live providers', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is not there: 404 on both routes, which is how a client tells the providers are live', async () => {
    expect(t.config.providersMode).toBe('live');
    expect((await t.request('GET', SAMPLES)).status).toBe(404);
    expect((await t.request('POST', SAMPLES)).status).toBe(404);
  });
});
