import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { TestApp } from './support/test-app';

const BASE = '/api/v1/media';

describe('the URL guard at submit (private addresses not allowed)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { WEBHOOK_ALLOW_PRIVATE: 'false', APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    ['audio/transcribe', { audio_url: 'http://127.0.0.1:8080/a.mp3' }, 'audio_url', 'loopback'],
    ['audio/transcribe', { audio_url: 'http://[::ffff:169.254.169.254]/latest' }, 'audio_url', 'linkLocal'],
    ['audio/transcribe', { audio_url: 'http://[::127.0.0.1]/a.mp3' }, 'audio_url', 'ipv4Compatible'],
    ['audio/transcribe', { audio_url: 'http://[64:ff9b::a9fe:a9fe]/latest' }, 'audio_url', 'rfc6052'],
    [
      'videos/img2vid',
      { images: [{ id: 'a', image_url: 'http://192.168.0.10/x.png', duracao: 1 }] },
      'images[0].image_url',
      'private',
    ],
    [
      'videos/caption',
      { url_video: 'https://example.com/v.mp4', url_srt: 'http://10.0.0.1/s.srt' },
      'url_srt',
      'private',
    ],
    ['subtitles/generate', { text: 'x', webhook_url: 'http://localhost:9000/hook' }, 'webhook_url', 'localhost'],
    ['subtitles/generate', { text: 'x', webhook_url: 'http://API.localhost:9000/hook' }, 'webhook_url', 'localhost'],
    ['subtitles/generate', { text: 'x', webhook_url: 'http://u:p@example.com/hook' }, 'webhook_url', 'credentials'],
  ])('%s refuses %j → 400 naming %s (%s)', async (path, body, field, reason) => {
    const res = await t.request('POST', `${BASE}/${path}`, { body });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([field]);
    expect(res.body.errors[0].message).toContain(reason);
  });

  it.each([
    [
      '/video/img2vid/async',
      { images: [{ id: 1, image_url: 'http://169.254.169.254/x.png', duracao: 1 }] },
      'images[0].image_url',
    ],
    [
      '/video/addaudio/async',
      { url_video: 'https://example.com/v.mp4', url_audio: 'http://10.1.2.3/a.mp3' },
      'url_audio',
    ],
    [
      '/caption_style/highlight/async',
      { url_video: 'http://127.0.0.1/v.mp4', url_srt: 'https://example.com/s.srt' },
      'url_video',
    ],
  ])('the sources’ route %s refuses %j → 400 naming %s', async (path, body, field) => {
    const res = await t.request('POST', path, { body });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([field]);
  });

  it('accepts public URLs', async () => {
    const res = await t.request('POST', `${BASE}/audio/transcribe`, {
      body: { audio_url: 'https://example.com/a.mp3' },
    });
    expect(res.status).toBe(202);
  });
});

describe('MEDIA_ALLOWED_PORTS at submit', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      env: { WEBHOOK_ALLOW_PRIVATE: 'false', APP_ROLE: 'api', MEDIA_ALLOWED_PORTS: '80,443' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a media URL naming another port with 400 naming the field; webhooks are not media', async () => {
    for (const [path, body, field] of [
      ['audio/transcribe', { audio_url: 'https://example.com:8443/a.mp3' }, 'audio_url'],
      [
        'videos/img2vid',
        { images: [{ id: 'a', image_url: 'http://example.com:9000/x.png', duracao: 1 }] },
        'images[0].image_url',
      ],
      [
        'videos/addaudio',
        { url_video: 'https://example.com/v.mp4', url_audio: 'http://example.com:81/a.mp3' },
        'url_audio',
      ],
    ] as const) {
      const res = await t.request('POST', `${BASE}/${path}`, { body });
      expect([path, res.status]).toEqual([path, 400]);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([field]);
      expect(res.body.errors[0].message).toContain('must use port 80 or 443');
    }
    for (const body of [
      { audio_url: 'https://example.com/a.mp3' },
      { audio_url: 'http://example.com:443/a.mp3' },
      {
        audio_url: 'https://example.com/a.mp3',
        webhook_url: 'https://hooks.example.com:8443/in',
        webhook_secret: 'a-webhook-secret-0123456789',
      },
    ]) {
      const res = await t.request('POST', `${BASE}/audio/transcribe`, { body });
      expect([body, res.status]).toEqual([body, 202]);
    }
  });
});

describe('provider outputs through the URL guard (private addresses not allowed)', () => {
  let t: TestApp;
  let inside: Server;
  let insideBase: string;
  let insideHits = 0;
  const leaky = new ScriptedProvider('leaky', [TaskType.ImageGeneration]);

  beforeAll(async () => {
    inside = createServer((_req, res) => {
      insideHits++;
      res.writeHead(200, { 'content-type': 'image/png' }).end('internal');
    });
    await new Promise<void>((resolve) => inside.listen(0, '127.0.0.1', resolve));
    insideBase = `http://127.0.0.1:${(inside.address() as AddressInfo).port}`;
    // The sandbox's emulators live on loopback: their own origins stay reachable.
    t = await TestApp.start({
      env: { WEBHOOK_ALLOW_PRIVATE: 'false', PROVIDER_POLL_SCALE: '0.02' },
      sandbox: { runpodExecution: 'simulated', knobs: { asyncSteps: 1 } },
    });
  });
  afterAll(async () => {
    await t.close();
    inside.close();
  });

  it('copies outputs from a configured provider’s own origin, even on loopback', async () => {
    // Runway answers with URLs to its own output files (the emulator's, on loopback).
    const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'waves', provider: 'runway' } });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id, (x) => ['completed', 'failed'].includes(x.status), 20000);
    expect(task).toMatchObject({ status: 'completed', provider: 'runway' });
    expect(task.output.files).toHaveLength(1);
    expect((await fetch(`${t.baseUrl}${task.output.files[0].url}`)).status).toBe(200);
  });

  it('fails a task whose provider hands back a URL to another private address, without fetching it', async () => {
    const app = await TestApp.start({
      env: { WEBHOOK_ALLOW_PRIVATE: 'false', APP_ROLE: 'all' },
      providers: [leaky],
    });
    try {
      leaky.options.artifacts = [{ contentType: 'image/png', url: `${insideBase}/metadata?token=provider-token` }];
      const res = await app.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a fox' } });
      expect(res.status).toBe(202);
      const task = await app.waitForTask(res.body.id, (x) => ['completed', 'failed'].includes(x.status), 20000);
      expect(task).toMatchObject({ status: 'failed', output: null, attempts: 1 });
      expect(task.error.code).toBe('provider_bad_response');
      expect(task.error.message).toContain('a provider output URL was refused');
      expect(task.error.message).not.toContain('provider-token');
      expect(insideHits).toBe(0);
    } finally {
      await app.close();
    }
  });
});
