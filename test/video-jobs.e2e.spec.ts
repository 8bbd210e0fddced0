import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { Webhook } from 'standardwebhooks';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const SECRET = 'a-deployment-secret-0123456789';

describe('the video API of the sources', () => {
  let t: TestApp;
  let server: Server;
  let frame: string;
  const dir = mkdtempSync(join(tmpdir(), 'video-jobs-spec-'));

  beforeAll(async () => {
    execFileSync(
      'ffmpeg',
      ['-hide_banner', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240', '-frames:v', '1', join(dir, 'f.png')],
      {
        stdio: 'ignore',
      },
    );
    const png = readFileSync(join(dir, 'f.png'));
    server = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(png));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    frame = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.png`;
    t = await TestApp.start({ env: { WEBHOOK_SECRET: SECRET } });
  });
  afterAll(async () => {
    await t.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts /video/img2vid/async at once with the sources’ answer, and shows the job in their shape', async () => {
    const res = await t.request('POST', '/video/img2vid/async', {
      body: { images: [{ id: 7, image_url: frame, duracao: 1 }], id_roteiro: 'rot-42' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      jobId: expect.any(String),
      status: 'IN_QUEUE',
      statusUrl: `/video/job/${res.body.jobId}`,
      resultUrl: `/video/job/${res.body.jobId}/result`,
      estimatedTime: expect.stringMatching(/^~\d+ minutes?$/),
    });
    const id = res.body.jobId as string;
    await t.waitForTask(id, (x) => x.status === 'completed', 30000);
    const videos = [{ id: '7', video_url: expect.stringMatching(/^\/files\//), filename: '7.mp4' }];
    // RunPod's words for the async video API's clients…
    const runpod = await t.request('GET', `/video/job/${id}`);
    expect(runpod.status).toBe(200);
    expect(runpod.body).toMatchObject({ id, status: 'COMPLETED', error: null, id_roteiro: 'rot-42' });
    expect(runpod.body.delayTime).toBeGreaterThanOrEqual(0);
    expect(runpod.body.executionTime).toBeGreaterThan(0);
    expect(runpod.body.output).toEqual({ videos, message: '1 video ready' });
    // …and the orchestrator's for its clients.
    const orchestrator = await t.request('GET', `/jobs/${id}`);
    expect(orchestrator.status).toBe(200);
    expect(orchestrator.body).toMatchObject({
      jobId: id,
      status: 'COMPLETED',
      progress: 100,
      createdAt: expect.any(String),
      completedAt: expect.any(String),
      result: { videos, message: '1 video ready' },
      error: null,
      id_roteiro: 'rot-42',
    });
    const result = await t.request('GET', `/video/job/${id}/result`);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ jobId: id, status: 'COMPLETED', result: { videos: [{ id: '7' }] } });
    // The same job through the platform's own API.
    expect((await t.request('GET', `/api/v1/media/tasks/${id}`)).body).toMatchObject({
      type: 'img2vid',
      status: 'completed',
    });
    // Another user sees none of it.
    expect((await t.request('GET', `/jobs/${id}`, { as: 'mallory' })).status).toBe(404);
  });

  it('sends one webhook when the job ends, in the sources’ own body, signed', async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const res = await t.request('POST', '/video/img2vid/async', {
        body: {
          images: [{ id: 'w1', image_url: frame, duracao: 0.5 }],
          webhook_url: `${receiver.url}/n8n`,
          id_roteiro: 99,
        },
      });
      expect(res.status).toBe(202);
      const [hook] = await receiver.waitFor((all) => all.length === 1, 30000);
      // Deliveries are written with the transitions: by the end, the job's rows are all there, and its one is marked.
      const rows = await waitUntil(
        'the delivery to be marked',
        () => t.dataSource.query(`SELECT status FROM webhook_deliveries WHERE task_id = $1`, [res.body.jobId]),
        { until: (list: { status: string }[]) => list.every((d) => d.status === 'delivered') },
      );
      expect(rows).toHaveLength(1);
      expect(receiver.received).toHaveLength(1); // not created, started, progress: only the end
      expect(hook.json).toEqual({
        jobId: res.body.jobId,
        status: 'COMPLETED',
        result: {
          videos: [{ id: 'w1', video_url: expect.stringMatching(/^\/files\//), filename: 'w1.mp4' }],
          message: '1 video ready',
        },
        error: null,
        id_roteiro: 99,
      });
      // The body the delivery carries says what the API's own mapper says of the job (links are signed
      // when read: compared without their signature).
      const view = (await t.request('GET', `/video/job/${res.body.jobId}`)).body;
      const unsigned = (result: { videos: { video_url: string }[] }) => ({
        ...result,
        videos: result.videos.map((v) => ({ ...v, video_url: v.video_url.split('?')[0] })),
      });
      expect({ ...hook.json, result: unsigned(hook.json.result) }).toEqual({
        jobId: view.id,
        status: view.status,
        result: unsigned(view.output),
        error: view.error,
        id_roteiro: view.id_roteiro,
      });
      expect(() => new Webhook(SECRET, { format: 'raw' }).verify(hook.body, hook.headers as never)).not.toThrow();
    } finally {
      await receiver.close();
    }
  });

  it('documents its routes with the X-API-Key scheme it names', async () => {
    const doc = (await t.request('GET', '/docs-json', { token: null })).body;
    expect(doc.components.securitySchemes['X-API-Key']).toEqual({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
    expect(doc.paths['/video/img2vid/async'].post.security).toEqual(expect.arrayContaining([{ 'X-API-Key': [] }]));
  });

  it('documents each path as its own operation, with the statuses it answers and the shapes of its answers', async () => {
    const doc = (await t.request('GET', '/docs-json', { token: null })).body;
    const sync = doc.paths['/video/img2vid'].post;
    const async = doc.paths['/video/img2vid/async'].post;
    expect([sync.operationId, async.operationId]).toEqual(['submitImg2VidJob', 'submitImg2VidJobAsync']);
    expect(Object.keys(sync.responses).filter((s) => s.startsWith('2'))).toEqual(['200', '202']);
    expect(Object.keys(async.responses).filter((s) => s.startsWith('2'))).toEqual(['200', '202']);
    expect(sync.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/SourcesImg2VidBodyDto',
    });
    // Each answer carries exactly the properties its schema names, and every one it requires.
    const fits = (body: Record<string, unknown>, ref: { $ref: string }) => {
      const schema = doc.components.schemas[ref.$ref.split('/').pop()!];
      expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(Object.keys(body)));
      expect(Object.keys(body)).toEqual(expect.arrayContaining(schema.required));
    };
    const schemaOf = (path: string, method: string, status: number) =>
      doc.paths[path][method].responses[String(status)].content['application/json'].schema;

    const done = await t.request('POST', '/video/img2vid', {
      body: { images: [{ id: 'a', image_url: frame, duracao: 1 }], id_roteiro: 'rot-doc' },
    });
    expect(done.status).toBe(200);
    fits(done.body, schemaOf('/video/img2vid', 'post', 200));
    const id = done.body.jobId as string;
    for (const path of ['/jobs/{id}', '/video/job/{id}', '/video/job/{id}/result']) {
      const res = await t.request('GET', path.replace('{id}', id));
      expect(res.status).toBe(200);
      fits(res.body, schemaOf(path, 'get', 200));
    }
    const cancel = await t.request('POST', `/jobs/${id}/cancel`);
    expect(cancel.status).toBe(409);
    expect(Object.keys(doc.paths['/jobs/{id}/cancel'].post.responses)).toContain('409');
  });

  it('holds the synchronous route until the job ends, and refuses bad input with 400', async () => {
    const res = await t.request('POST', '/video/img2vid', {
      body: { images: [{ id: 'a', image_url: frame, duracao: 1 }] },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      jobId: expect.any(String),
      status: 'COMPLETED',
      output: { videos: [{ id: 'a', filename: 'a.mp4' }] },
    });
    expect(res.body.id).toBe(res.body.jobId);
    for (const body of [{ images: [{ id: 'a', image_url: frame, duracao: 0 }] }, { images: [] }, [1, 2]]) {
      const bad = await t.request('POST', '/video/img2vid/async', { body });
      expect(bad.status).toBe(400);
    }
  });

  it('refuses a `path` storage would not take (empty, dot or hidden segments) with 400 naming path', async () => {
    const before = (await t.request('GET', '/api/v1/media/tasks?limit=100')).body.data.length;
    const media = { url_video: 'https://example.com/v.mp4', url_audio: 'https://example.com/a.mp3' };
    for (const path of ['a//b', '.hidden', 'a/./b', 'a/.b', 'a/b/.', '/a', 'a/..', 'a b', 'x'.repeat(201)]) {
      for (const [route, body] of [
        ['/video/img2vid/async', { images: [{ id: 'a', image_url: frame, duracao: 1 }] }],
        ['/video/addaudio/async', media],
        ['/api/v1/media/videos/caption', { url_video: media.url_video, url_srt: 'https://example.com/s.srt' }],
      ] as const) {
        const res = await t.request('POST', route, { body: { ...body, path } });
        expect([route, path, res.status]).toEqual([route, path, 400]);
        expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(['path']);
      }
    }
    expect((await t.request('GET', '/api/v1/media/tasks?limit=100')).body.data.length).toBe(before);
    // What storage takes is still accepted, a trailing slash included.
    for (const path of ['campaign/2026', 'campaign/2026/', 'a.b/c_d-e']) {
      const res = await t.request('POST', '/video/addaudio/async', { body: { ...media, path } });
      expect([path, res.status]).toEqual([path, 202]);
      await t.request('POST', `/jobs/${res.body.jobId}/cancel`);
    }
  });
});

describe('the video API of the sources, workers off', () => {
  it('answers 202 on /result while a job waits, and cancels it on both cancel routes', async () => {
    const database = await createTestDatabase();
    const redisPrefix = `vjobs${process.pid}`;
    const api = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'api' } });
    try {
      const submit = async () =>
        (
          await api.request('POST', '/video/img2vid/async', {
            body: { images: [{ id: 'x', image_url: 'https://example.com/x.png', duracao: 2 }] },
          })
        ).body.jobId as string;
      const first = await submit();
      const waiting = await api.request('GET', `/video/job/${first}/result`);
      expect(waiting.status).toBe(202);
      expect(waiting.body).toEqual({
        jobId: first,
        status: 'IN_QUEUE',
        statusUrl: `/video/job/${first}`,
        resultUrl: `/video/job/${first}/result`,
        message: expect.any(String),
      });
      for (const route of ['jobs', 'job']) {
        const id = route === 'jobs' ? first : await submit();
        const cancelled = await api.request('POST', `/${route}/${id}/cancel`);
        expect(cancelled.status).toBe(200);
        expect(cancelled.body).toEqual({ jobId: id, status: 'CANCELLED', message: 'Job cancelled' });
        expect((await api.request('POST', `/${route}/${id}/cancel`)).status).toBe(409);
      }
      const ended = await api.request('GET', `/video/job/${first}/result`);
      expect(ended.status).toBe(200);
      expect(ended.body).toMatchObject({ status: 'CANCELLED', result: null });
    } finally {
      await api.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });

  it('answers a body with webhook_url at once in the orchestrator’s words; /async keeps the async API’s', async () => {
    const api = await TestApp.start({ env: { APP_ROLE: 'api', WEBHOOK_SECRET: SECRET } });
    try {
      const body = {
        images: [{ id: 'x', image_url: 'https://example.com/x.png', duracao: 2 }],
        webhook_url: 'https://example.com/hook',
        id_roteiro: 'r-7',
      };
      // No worker runs here: an answer that waited for the job would never come.
      const res = await api.request('POST', '/video/img2vid', { body });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({
        jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        status: 'QUEUED',
        estimatedTime: '~1 minute',
        statusUrl: `/jobs/${res.body.jobId}`,
        resultUrl: `/video/job/${res.body.jobId}/result`,
        message: expect.any(String),
      });
      expect(res.headers.get('preference-applied')).toBeNull();
      const job = await api.request('GET', res.body.statusUrl);
      expect(job.body).toMatchObject({ jobId: res.body.jobId, status: 'QUEUED', progress: 0, id_roteiro: 'r-7' });
      expect((await api.request('GET', `/video/job/${res.body.jobId}`)).body.status).toBe('IN_QUEUE');

      const styled = await api.request('POST', '/caption_style/highlight', {
        body: {
          url_video: 'https://example.com/v.mp4',
          url_srt: 'https://example.com/v.srt',
          webhook_url: 'https://example.com/hook',
        },
      });
      expect(styled.status).toBe(202);
      expect(styled.body).toMatchObject({ status: 'QUEUED', statusUrl: `/jobs/${styled.body.jobId}` });

      const v2 = await api.request('POST', '/video/img2vid/async', { body });
      expect(v2.status).toBe(202);
      expect(v2.body).toMatchObject({ status: 'IN_QUEUE', statusUrl: `/video/job/${v2.body.jobId}` });
    } finally {
      await api.close();
    }
  });

  it('holds a synchronous request for up to SOURCES_SYNC_WAIT_SECONDS, and lets it go with a 202 at shutdown', async () => {
    const api = await TestApp.start({ env: { APP_ROLE: 'api', SOURCES_SYNC_WAIT_SECONDS: '900' } });
    let closed = false;
    try {
      const body = { images: [{ id: 'x', image_url: 'https://example.com/x.png', duracao: 2 }] };
      // Longer than the platform's own routes allow (60 s), within the sources' wait; past it, a 400.
      const tooLong = await api.request('POST', '/video/img2vid', { body, headers: { prefer: 'wait=901' } });
      expect(tooLong.status).toBe(400);
      expect(tooLong.body.message).toMatch(/from 0 to 900/);
      const platform = await api.request('POST', '/api/v1/media/videos/img2vid', {
        body,
        headers: { prefer: 'wait=120' },
      });
      expect(platform.status).toBe(400);

      const started = Date.now();
      const tasks = async () => Number((await api.dataSource.query(`SELECT count(*) AS n FROM tasks`))[0].n);
      const before = await tasks();
      const held = api.request('POST', '/video/img2vid', { body, headers: { prefer: 'wait=120' } });
      const plain = api.request('POST', '/video/img2vid', { body });
      // Both requests are held once their tasks exist (each wait is set up before its task is written).
      await waitUntil('both tasks to exist', async () => (await tasks()) === before + 2);
      closed = true;
      const closing = api.close();
      const [a, b] = await Promise.all([held, plain]);
      await closing;
      for (const res of [a, b]) {
        expect(res.status).toBe(202);
        expect(res.body).toMatchObject({ status: 'IN_QUEUE', statusUrl: `/video/job/${res.body.jobId}` });
      }
      expect(a.headers.get('preference-applied')).toBe('wait=120');
      expect(b.headers.get('preference-applied')).toBe('wait=900');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      if (!closed) await api.close();
    }
  });
});
