import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const SECRET = 'a-deployment-secret-0123456789';
const ORDER = ['QUEUED', 'SUBMITTED', 'PROCESSING', 'COMPLETED'];

function images(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: `img-${i}`,
    image_url: `https://example.com/frames/${i}.jpg`,
    duracao: 1,
  }));
}

/**
 * The orchestrator's clients (n8n flows): an API key, a webhook_url, 100 images; the answer at once, then one signed
 * webhook. RunPod is the only img2vid provider here (no ffmpeg binary), its emulator simulating the work: each job is
 * IN_PROGRESS on a worker for a few polls, and polls come every ~0.5 s, so every state of a job can be seen.
 */
describe('the orchestrator’s clients', () => {
  let t: TestApp;
  let admin: string;
  let key: string;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    t = await TestApp.start({
      sandbox: { runpodExecution: 'simulated', knobs: { asyncSteps: 2, clipMs: 5 } },
      env: {
        WEBHOOK_SECRET: SECRET,
        FFMPEG_PATH: '/nonexistent/ffmpeg',
        PROVIDER_POLL_SCALE: '0.25',
      },
    });
    admin = t.token('root', { admin: true });
    const created = await t.request('POST', '/api/v1/api-keys', {
      token: admin,
      body: { owner: 'n8n', name: 'flows' },
    });
    expect(created.status).toBe(201);
    key = created.body.key;
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  const withKey = (method: string, path: string, body?: unknown) =>
    t.request(method, path, { token: null, headers: { 'x-api-key': key }, body });

  it('gets its 202 with jobId before the job runs, sees QUEUED → SUBMITTED → PROCESSING → COMPLETED, and one signed webhook with 100 videos in order', async () => {
    // Workers take nothing while the queue is paused: the answer cannot have waited for the job.
    expect((await t.request('POST', '/api/v1/queue/tasks/pause', { token: admin })).status).toBe(200);
    const res = await withKey('POST', '/video/img2vid', {
      images: images(100),
      webhook_url: `${receiver.url}/n8n`,
      id_roteiro: 'roteiro-1',
    });
    expect(res.status).toBe(202);
    const id = res.body.jobId as string;
    expect(res.body).toEqual({
      jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'QUEUED',
      estimatedTime: '~4 minutes',
      statusUrl: `/jobs/${id}`,
      resultUrl: `/video/job/${id}/result`,
      message: expect.any(String),
    });

    // Watch the job as its client would, until it ends.
    const seen: { status: string; progress: number }[] = [];
    const look = async () => {
      const job = await withKey('GET', `/jobs/${id}`);
      expect(job.status).toBe(200);
      seen.push({ status: job.body.status, progress: job.body.progress });
      return job.body;
    };
    const watching = waitUntil('the job to end', look, {
      timeoutMs: 60_000,
      until: (job) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(job.status),
    });
    await waitUntil('the first look at the job', () => seen.length > 0, { intervalMs: 10 });
    expect(seen[0]).toEqual({ status: 'QUEUED', progress: 0 });
    expect((await t.request('POST', '/api/v1/queue/tasks/resume', { token: admin })).status).toBe(200);
    const final = await watching;

    // Every state, in order, none skipped and none going back; progress only grows, to 100 at the end.
    const statuses = seen.map((s) => s.status).filter((s, i, all) => i === 0 || s !== all[i - 1]);
    expect(statuses).toEqual(ORDER);
    const progress = seen.map((s) => s.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(seen.filter((s) => s.status !== 'COMPLETED').every((s) => s.progress < 100)).toBe(true);
    expect(final).toMatchObject({
      jobId: id,
      status: 'COMPLETED',
      progress: 100,
      completedAt: expect.any(String),
      error: null,
      id_roteiro: 'roteiro-1',
    });
    expect(final.result.videos.map((v: { id: string }) => v.id)).toEqual(images(100).map((i) => i.id));
    // It ran as three parts at RunPod's cap of three.
    expect((await t.request('GET', `/api/v1/media/tasks/${id}`, { as: 'n8n' })).body.parts).toBe(3);

    // One webhook: the delivery rows are written with the transitions, so they are all there once it completed.
    const deliveries = await withKey('GET', `/api/v1/media/tasks/${id}/webhooks`);
    expect(deliveries.body.data).toHaveLength(1);
    const [hook] = await receiver.waitFor((all) => all.length >= 1, 10_000);
    expect(receiver.on('/n8n')).toHaveLength(1);
    // Links are signed when they are read: compare them without their signature.
    const unsigned = (videos: { video_url: string }[]) =>
      videos.map((v) => ({ ...v, video_url: v.video_url.split('?')[0] }));
    expect({ ...hook.json, result: { ...hook.json.result, videos: unsigned(hook.json.result.videos) } }).toEqual({
      jobId: id,
      status: 'COMPLETED',
      result: { videos: unsigned(final.result.videos), message: '100 videos ready' },
      error: null,
      id_roteiro: 'roteiro-1',
    });
    expect(hook.json.result.videos[0]).toEqual({
      id: 'img-0',
      video_url: expect.stringMatching(/^\/files\//),
      filename: 'img-0.mp4',
    });
    expect(() => new Webhook(SECRET, { format: 'raw' }).verify(hook.body, hook.headers as never)).not.toThrow();
    expect(hook.headers['x-webhook-signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(hook.body).digest('hex')}`,
    );
  });

  it('answers a client of the async video API’s synchronous mode with the finished job and its jobId', async () => {
    const res = await withKey('POST', '/video/img2vid', { images: images(2) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'COMPLETED',
      output: { videos: [{ id: 'img-0' }, { id: 'img-1' }], message: '2 videos ready' },
      error: null,
    });
    expect(res.body.id).toBe(res.body.jobId);
    expect(res.headers.get('preference-applied')).toBe(`wait=${t.config.sourcesSyncWaitSeconds}`);
  });

  it('takes model "best" on any task and lets routing choose: the task pins no model', async () => {
    const submits: [string, Record<string, unknown>][] = [
      ['/api/v1/media/images/generate', { prompt: 'a lighthouse', model: 'best' }],
      ['/api/v1/media/subtitles/generate', { text: 'One line. Another.', model: 'best' }],
    ];
    for (const [path, body] of submits) {
      const res = await withKey('POST', path, body);
      expect(res.status).toBe(202);
      expect(res.body.input).not.toHaveProperty('model');
      const done = await t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed', 20_000);
      expect({ path, status: done.status }).toEqual({ path, status: 'completed' });
    }
    const refused = await withKey('POST', '/video/img2vid', { images: images(1), model: 'gen-3' });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([{ field: 'model', message: expect.stringContaining('"best"') }]);
  });
});
