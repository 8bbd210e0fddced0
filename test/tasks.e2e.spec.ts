import { createHmac } from 'node:crypto';
import { TaskEventType } from '../src/tasks/task.enums';
import { TEST_JWT_SECRET, TestApp } from './support/test-app';

const BASE = '/api/v1/media';

const VALID: Record<string, { path: string; type: string; body: Record<string, unknown> }> = {
  image: { path: 'images/generate', type: 'image_generation', body: { prompt: 'a red fox', size: '512x512' } },
  video: { path: 'videos/generate', type: 'video_generation', body: { prompt: 'waves', duration: 5 } },
  audio: { path: 'audio/transcribe', type: 'audio_transcription', body: { audio_url: 'https://example.com/a.mp3' } },
  subtitles: {
    path: 'subtitles/generate',
    type: 'subtitle_generation',
    body: { text: 'Hello there. General Kenobi.' },
  },
  img2vid: {
    path: 'videos/img2vid',
    type: 'img2vid',
    body: { images: [{ id: 1, image_url: 'https://example.com/1.jpg', duracao: 3 }] },
  },
  caption: {
    path: 'videos/caption',
    type: 'caption',
    body: { url_video: 'https://example.com/v.mp4', url_srt: 'https://example.com/v.srt' },
  },
  addaudio: {
    path: 'videos/addaudio',
    type: 'addaudio',
    body: { url_video: 'https://example.com/v.mp4', url_audio: 'https://example.com/a.mp3' },
  },
};

function b64url(value: object | string): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

describe('tasks over HTTP', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('submit', () => {
    it.each(Object.entries(VALID))('accepts a %s task with 202 and the queued task', async (_name, spec) => {
      const res = await t.request('POST', `${BASE}/${spec.path}`, { body: spec.body });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ type: spec.type, status: 'queued', priority: 'medium', progress: 0 });
      expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.body.status_url).toBe(`${BASE}/tasks/${res.body.id}`);
      expect(res.body.result_url).toBe(`${BASE}/tasks/${res.body.id}/result`);
    });

    it('completes a subtitle task with real SRT output from the built-in engine', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'The first sentence is short. The second one is a little longer than the first.', format: 'srt' },
      });
      const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed');
      expect(task.provider).toBe('subtitle-engine');
      expect(task.attempts).toBe(1);
      expect(task.cost).toEqual({ amount: 0, currency: 'USD' });
      expect(task.output.format).toBe('srt');
      expect(task.output.cue_count).toBe(2);
      expect(task.output.content).toMatch(/^1\n00:00:00,000 --> 00:00:01,\d{3}\nThe first sentence is short\.\n\n2\n/);
      expect(task.execution_time_ms).toBeGreaterThanOrEqual(0);
      expect(task.started_at).not.toBeNull();

      const result = await t.request('GET', `${BASE}/tasks/${res.body.id}/result`);
      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ id: res.body.id, status: 'completed' });
      expect(result.body.output.content).toBe(task.output.content);
      expect(result.body.output.files).toEqual([
        expect.objectContaining({ filename: 'subtitles.srt', content_type: 'application/x-subrip' }),
      ]);
      const file = await fetch(`${t.baseUrl}${result.body.output.files[0].url}`);
      expect(file.status).toBe(200);
      expect(await file.text()).toBe(task.output.content);

      expect(t.eventsOf(res.body.id).map((e) => [e.type, e.sequence])).toEqual([
        [TaskEventType.Created, 1],
        [TaskEventType.Started, 2],
        [TaskEventType.Completed, 3],
      ]);
    });

    it('refuses a translation when no provider that translates is configured (400 naming target_language)', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Hello there.', source_language: 'en', target_language: 'pt' },
      });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([
        expect.objectContaining({ field: 'target_language', message: expect.stringContaining('does not translate') }),
      ]);
    });

    it('renders WebVTT and ASS too, and lays out manual segments', async () => {
      const vtt = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Tom & Jerry <3 cheese.', format: 'vtt', target_language: 'en' },
      });
      const ass = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: {
          format: 'ass',
          timing_mode: 'manual',
          segments: [
            { start: 1, end: 2.5, text: 'One.' },
            { start: 3, end: 4, text: 'Two.' },
          ],
        },
      });
      const vttTask = await t.waitForTask(vtt.body.id, (x) => x.status === 'completed');
      const assTask = await t.waitForTask(ass.body.id, (x) => x.status === 'completed');
      expect(vttTask.output.content).toContain('WEBVTT');
      expect(vttTask.output.content).toContain('Tom &amp; Jerry &lt;3 cheese.');
      expect(vttTask.output.content_type).toBe('text/vtt');
      expect(assTask.output.content).toContain('Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,One.');
      expect(assTask.output.content).toContain('Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,Two.');
    });

    it('fails task types with no configured provider fast, with no_provider', async () => {
      const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a cat' } });
      const task = await t.waitForTask(res.body.id, (x) => x.status === 'failed');
      expect(task.error.code).toBe('no_provider');
      expect(task.error.message).toContain('image_generation');
      const result = await t.request('GET', `${BASE}/tasks/${res.body.id}/result`);
      expect(result.status).toBe(409);
      expect(result.body.error).toEqual({ code: 'no_provider', message: task.error.message });
    });

    it('keeps the webhook secret write-only', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: {
          text: 'Hi.',
          webhook_url: 'https://example.com/hook',
          webhook_secret: 'whsec_supersecretvalue1234567890ABCDEF',
        },
      });
      expect(res.status).toBe(202);
      expect(JSON.stringify(res.body)).not.toContain('supersecret');
      const got = await t.request('GET', `${BASE}/tasks/${res.body.id}`);
      expect(got.body.webhook_url).toBe('https://example.com/hook');
      expect(JSON.stringify(got.body)).not.toContain('supersecret');
      expect(got.body).not.toHaveProperty('webhook_secret');
    });

    it('honours priority, metadata and webhook_events, and keeps common fields out of input', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Hi.', priority: 'urgent', metadata: { order: 7 }, webhook_events: ['task.completed'] },
      });
      expect(res.status).toBe(202);
      expect(res.body.priority).toBe('urgent');
      expect(res.body.metadata).toEqual({ order: 7 });
      expect(res.body.webhook_events).toEqual(['task.completed']);
      expect(res.body.input).toEqual({ text: 'Hi.', format: 'srt', timing_mode: 'auto' });
    });
  });

  describe('bad input', () => {
    const cases: [string, string, unknown, string][] = [
      ['missing field', 'images/generate', {}, 'prompt'],
      ['wrong type', 'images/generate', { prompt: 42 }, 'prompt'],
      ['out of range', 'images/generate', { prompt: 'x', n: 9 }, 'n'],
      ['not an allowed value', 'images/generate', { prompt: 'x', size: '999x999' }, 'size'],
      ['unknown field', 'images/generate', { prompt: 'x', colour: 'red' }, 'colour'],
      ['bad priority', 'subtitles/generate', { text: 'x', priority: 'asap' }, 'priority'],
      ['bad url scheme', 'audio/transcribe', { audio_url: 'ftp://example.com/a.mp3' }, 'audio_url'],
      [
        'nested field',
        'videos/img2vid',
        { images: [{ id: 'a', image_url: 'https://e.com/1.png', duracao: 0 }] },
        'images[0].duracao',
      ],
      [
        'nested unknown field',
        'videos/img2vid',
        { images: [{ id: 'a', image_url: 'https://e.com/1.png', duracao: 2, x: 1 }] },
        'images[0].x',
      ],
      ['manual timing without segments', 'subtitles/generate', { timing_mode: 'manual' }, 'segments'],
      ['metadata not an object', 'subtitles/generate', { text: 'x', metadata: [1, 2] }, 'metadata'],
      ['metadata over 16 KiB', 'subtitles/generate', { text: 'x', metadata: { blob: 'x'.repeat(17000) } }, 'metadata'],
      [
        'path traversal',
        'videos/caption',
        { url_video: 'https://e.com/v.mp4', url_srt: 'https://e.com/v.srt', path: '../etc' },
        'path',
      ],
      [
        'unknown webhook event',
        'subtitles/generate',
        { text: 'x', webhook_events: ['task.exploded'] },
        'webhook_events',
      ],
    ];

    it.each(cases)('%s → 400 naming the field', async (_name, path, body, field) => {
      const before = await t.dataSource.query(`SELECT count(*)::int AS n FROM tasks`);
      const res = await t.request('POST', `${BASE}/${path}`, { body });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(res.body.message).toContain(field);
      const after = await t.dataSource.query(`SELECT count(*)::int AS n FROM tasks`);
      expect(after[0].n).toBe(before[0].n);
    });

    it('unknown provider → 400', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'x', provider: 'nope' } });
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ field: 'provider', message: 'provider "nope" is unknown' }]);
    });

    it('malformed JSON → 400', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, { rawBody: '{"text": "x",' });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.message).toMatch(/malformed JSON/);
    });

    it('body over 1 MiB → 413', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'x'.repeat(1024 * 1024 + 10) },
      });
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('payload_too_large');
    });

    it('a non-JSON content type → 415', async () => {
      const res = await t.request('POST', `${BASE}/subtitles/generate`, {
        rawBody: 'text=hello',
        headers: { 'content-type': 'text/csv' },
      });
      expect(res.status).toBe(415);
    });
  });

  describe('authentication', () => {
    const path = `${BASE}/tasks`;

    it('missing token → 401', async () => {
      const res = await t.request('GET', path, { token: null });
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('unauthorized');
    });

    it('expired token → 401', async () => {
      const res = await t.request('GET', path, { token: t.token('alice', { ttl: '-10s' }) });
      expect(res.status).toBe(401);
      expect(res.body.message).toBe('token expired');
    });

    it('alg none → 401', async () => {
      const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', roles: ['admin'] })}.`;
      const res = await t.request('GET', path, { token });
      expect(res.status).toBe(401);
    });

    it('wrong signature → 401', async () => {
      const header = b64url({ alg: 'HS256', typ: 'JWT' });
      const payload = b64url({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 });
      const sig = createHmac('sha256', 'another-secret').update(`${header}.${payload}`).digest('base64url');
      const res = await t.request('GET', path, { token: `${header}.${payload}.${sig}` });
      expect(res.status).toBe(401);
    });

    it('HS512 with the right secret → 401 (only HS256 is accepted)', async () => {
      const header = b64url({ alg: 'HS512', typ: 'JWT' });
      const payload = b64url({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 });
      const sig = createHmac('sha512', TEST_JWT_SECRET).update(`${header}.${payload}`).digest('base64url');
      const res = await t.request('GET', path, { token: `${header}.${payload}.${sig}` });
      expect(res.status).toBe(401);
    });

    it('health and docs need no token; the OpenAPI document declares bearer auth', async () => {
      expect((await t.request('GET', '/health/live', { token: null })).status).toBe(200);
      const docs = await t.request('GET', '/docs-json', { token: null });
      expect(docs.status).toBe(200);
      expect(docs.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(Object.keys(docs.body.paths)).toEqual(
        expect.arrayContaining([`${BASE}/subtitles/generate`, `${BASE}/tasks/{id}/result`, '/health']),
      );
      const ui = await fetch(`${t.baseUrl}/docs`);
      expect(ui.status).toBe(200);
      expect(await ui.text()).toContain('swagger');
    });
  });

  describe('reading, listing and ownership', () => {
    const ids: string[] = [];

    beforeAll(async () => {
      for (let i = 0; i < 5; i++) {
        const res = await t.request('POST', `${BASE}/videos/generate`, { as: 'carol', body: { prompt: `p${i}` } });
        ids.push(res.body.id);
      }
      await t.request('POST', `${BASE}/subtitles/generate`, { as: 'carol', body: { text: 'Carol speaks.' } });
      await t.request('POST', `${BASE}/subtitles/generate`, { as: 'dave', body: { text: 'Dave speaks.' } });
    });

    it("another user's task answers 404 on every task route", async () => {
      for (const [method, suffix] of [
        ['GET', ''],
        ['GET', '/result'],
        ['POST', '/cancel'],
        ['POST', '/retry'],
      ]) {
        const res = await t.request(method, `${BASE}/tasks/${ids[0]}${suffix}`, { as: 'mallory' });
        expect([method, suffix, res.status]).toEqual([method, suffix, 404]);
      }
      expect((await t.request('GET', `${BASE}/tasks/not-a-uuid`, { as: 'carol' })).status).toBe(404);
    });

    it('lists own tasks newest first with an opaque cursor and no overlap between pages', async () => {
      const first = await t.request('GET', `${BASE}/tasks?limit=4`, { as: 'carol' });
      expect(first.status).toBe(200);
      expect(first.body.data).toHaveLength(4);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      const second = await t.request('GET', `${BASE}/tasks?limit=4&cursor=${first.body.next_cursor}`, { as: 'carol' });
      expect(second.body.data).toHaveLength(2);
      expect(second.body.next_cursor).toBeNull();
      const all = [...first.body.data, ...second.body.data];
      expect(new Set(all.map((x: { id: string }) => x.id)).size).toBe(6);
      const created = all.map((x: { created_at: string }) => x.created_at);
      expect([...created].sort().reverse()).toEqual(created);
      expect(all.every((x: { id: string }) => x.id !== undefined)).toBe(true);
    });

    it('filters by type and status', async () => {
      const videos = await t.request('GET', `${BASE}/tasks?task_type=video_generation`, { as: 'carol' });
      expect(videos.body.data).toHaveLength(5);
      const subs = await t.request('GET', `${BASE}/tasks?task_type=subtitle_generation`, { as: 'carol' });
      expect(subs.body.data).toHaveLength(1);
      const done = await t.waitForTask(subs.body.data[0].id, (x) => x.status === 'completed');
      const completed = await t.request('GET', `${BASE}/tasks?status=completed`, { as: 'carol' });
      expect(completed.body.data.map((x: { id: string }) => x.id)).toEqual([done.id]);
      const future = await t.request('GET', `${BASE}/tasks?created_after=2999-01-01T00:00:00Z`, { as: 'carol' });
      expect(future.body.data).toHaveLength(0);
    });

    it('rejects bad list parameters with 400', async () => {
      for (const query of [
        'limit=101',
        'limit=0',
        'status=done',
        'created_after=yesterday',
        'cursor=garbage',
        'foo=1',
      ]) {
        const res = await t.request('GET', `${BASE}/tasks?${query}`, { as: 'carol' });
        expect([query, res.status]).toEqual([query, 400]);
      }
    });

    it('scope=all is for admins only', async () => {
      expect((await t.request('GET', `${BASE}/tasks?scope=all`, { as: 'carol' })).status).toBe(403);
      const admin = await t.request('GET', `${BASE}/tasks?scope=all&limit=100`, {
        token: t.token('root', { admin: true }),
      });
      expect(admin.status).toBe(200);
      const owners = new Set(admin.body.data.map((x: { id: string }) => x.id));
      expect(owners.has(ids[0])).toBe(true);
    });
  });
});
