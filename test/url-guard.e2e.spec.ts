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
