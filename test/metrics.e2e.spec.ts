import { randomBytes } from 'node:crypto';
import { TaskEventType, TaskType } from '../src/tasks/task.enums';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { ScriptedProvider } from './support/scripted-provider';
import { deleteRedisKeys, SubtitleEngineProvider, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const BASE = '/api/v1/media';
const SUBTITLES = `${BASE}/subtitles/generate`;
const PROMETHEUS_TEXT = /^text\/plain; version=0\.0\.4/;
const QUEUES = ['tasks', 'maintenance', 'webhooks', 'flows'];
const STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized', 'waiting-children'];

/** The value of the sample of `name` with exactly these labels (in any order); undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (got === wanted) return Number(match[3]);
  }
  return undefined;
}

async function scrape(
  t: TestApp,
  token: string | null = null,
): Promise<{ status: number; text: string; type: string }> {
  const res = await t.request('GET', '/metrics', { token });
  return { status: res.status, text: String(res.body), type: res.headers.get('content-type') ?? '' };
}

/** Scrapes until `predicate` holds: counters are bumped right after the row changes, not before. */
async function scrapeUntil(t: TestApp, predicate: (text: string) => boolean, timeoutMs = 10000): Promise<string> {
  const text = async () => (await scrape(t)).text;
  return waitUntil('the metrics to match', text, { timeoutMs, intervalMs: 50, until: predicate });
}

async function submitSubtitles(t: TestApp, body: Record<string, unknown> = {}): Promise<string> {
  const res = await t.request('POST', SUBTITLES, { body: { text: 'Hello.', ...body } });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

describe('GET /metrics (public: no METRICS_TOKEN)', () => {
  const images = new ScriptedProvider('scripted-images', [TaskType.ImageGeneration]);
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await TestApp.start({
      listen: true,
      providers: [images, new SubtitleEngineProvider()],
      env: {
        WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
        WEBHOOK_RETRY_DELAYS: '50',
        WEBHOOK_MAX_RETRIES: '1',
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it('counts a completed task: created and finished by type, provider and status, its duration and queue wait', async () => {
    const before = await scrape(t);
    expect(before.text).toContain('# TYPE media_tasks_created_total counter');
    expect(before.text).not.toContain('media_tasks_created_total{');
    expect(before.text).not.toContain('media_tasks_finished_total{');

    const id = await submitSubtitles(t);
    await t.waitForTask(id, (x) => x.status === 'completed');
    await scrapeUntil(t, () => t.eventsOf(id).some((e) => e.type === TaskEventType.Completed));

    const { status, text, type } = await scrape(t);
    expect(status).toBe(200);
    expect(type).toMatch(PROMETHEUS_TEXT);
    expect(
      sample(text, 'media_tasks_created_total', { type: 'subtitle_generation', provider: 'none', status: 'queued' }),
    ).toBe(1);
    expect(
      sample(text, 'media_tasks_finished_total', {
        type: 'subtitle_generation',
        provider: 'subtitle-engine',
        status: 'completed',
      }),
    ).toBe(1);
    expect(text).not.toMatch(/media_tasks_finished_total\{[^}]*status="failed"/);
    const duration = { type: 'subtitle_generation', status: 'completed' };
    expect(sample(text, 'media_task_duration_seconds_count', duration)).toBe(1);
    expect(sample(text, 'media_task_duration_seconds_bucket', { le: '+Inf', ...duration })).toBe(1);
    // The built-in engine finishes well within a minute.
    expect(sample(text, 'media_task_duration_seconds_bucket', { le: '60', ...duration })).toBe(1);
    expect(sample(text, 'media_task_duration_seconds_sum', duration)).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'media_task_queue_wait_seconds_count', { type: 'subtitle_generation' })).toBe(1);
    expect(
      sample(text, 'media_provider_call_duration_seconds_count', { provider: 'subtitle-engine', outcome: 'ok' }),
    ).toBe(1);
    expect(text).not.toContain('media_provider_errors_total{');
    // No task id ever becomes a label.
    expect(text).not.toContain(id);
  });

  it('reads the queue depth of every queue and state at scrape time', async () => {
    const tasks = (state: string) => (text: string) => sample(text, 'media_queue_jobs', { queue: 'tasks', state });
    // The one task ran to the end: once BullMQ has moved its job to completed, nothing of it waits or runs.
    const text = await scrapeUntil(t, (m) => tasks('active')(m) === 0);
    for (const queue of QUEUES) {
      for (const state of STATES)
        expect(sample(text, 'media_queue_jobs', { queue, state })).toEqual(expect.any(Number));
    }
    expect(tasks('waiting')(text)).toBe(0);
    expect(tasks('prioritized')(text)).toBe(0);
    expect(tasks('failed')(text)).toBe(0);
    expect(text.split('\n').filter((l) => l.startsWith('media_queue_jobs{'))).toHaveLength(
      QUEUES.length * STATES.length,
    );
  });

  it('exposes the Node process metrics with the media_ prefix', async () => {
    const { text } = await scrape(t);
    expect(sample(text, 'media_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'media_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).not.toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('counts webhook deliveries by outcome: delivered, failed then dead', async () => {
    receiver.answer((req, _n, res) => void res.writeHead(req.path === '/ok' ? 204 : 503).end());
    const ok = await submitSubtitles(t, { webhook_url: `${receiver.url}/ok`, webhook_events: ['task.completed'] });
    const down = await submitSubtitles(t, {
      webhook_url: `${receiver.url}/down`,
      webhook_events: ['task.completed'],
    });
    await t.waitForTask(ok, (x) => x.status === 'completed');
    await t.waitForTask(down, (x) => x.status === 'completed');
    // The first attempt at /down fails, its one retry (WEBHOOK_MAX_RETRIES=1) fails too: a dead letter.
    const text = await scrapeUntil(t, (m) => sample(m, 'media_webhook_deliveries_total', { outcome: 'dead' }) === 1);
    expect(sample(text, 'media_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(sample(text, 'media_webhook_deliveries_total', { outcome: 'failed' })).toBe(1);
    expect(receiver.on('/down')).toHaveLength(2);
    expect(
      sample(text, 'media_tasks_finished_total', {
        type: 'subtitle_generation',
        provider: 'subtitle-engine',
        status: 'completed',
      }),
    ).toBe(3);
  });

  it('counts provider errors by code, a failed task by status, and queue wait on the first start only', async () => {
    images.setScript(['transient', 'permanent']);
    const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a fox' } });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id as string, (x) => x.status === 'failed');
    expect(task.attempts).toBe(2);
    expect(task.error.code).toBe('content_policy');
    const failed = { type: 'image_generation', provider: 'scripted-images', status: 'failed' };
    const text = await scrapeUntil(t, (m) => sample(m, 'media_tasks_finished_total', failed) === 1);
    const provider = 'scripted-images';
    expect(sample(text, 'media_provider_errors_total', { provider, code: 'provider_unavailable' })).toBe(1);
    expect(sample(text, 'media_provider_errors_total', { provider, code: 'content_policy' })).toBe(1);
    expect(sample(text, 'media_provider_call_duration_seconds_count', { provider, outcome: 'error' })).toBe(2);
    expect(sample(text, 'media_provider_call_duration_seconds_count', { provider, outcome: 'ok' })).toBeUndefined();
    // Two starts, one queue wait: the retry's start would count the first run and the backoff as waiting.
    expect(t.eventsOf(res.body.id as string).filter((e) => e.type === TaskEventType.Started)).toHaveLength(2);
    expect(sample(text, 'media_task_queue_wait_seconds_count', { type: 'image_generation' })).toBe(1);
    expect(sample(text, 'media_task_duration_seconds_count', { type: 'image_generation', status: 'failed' })).toBe(1);
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ listen: true, env: { METRICS_TOKEN } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 401 without the token, with a wrong one or with a user token, and 200 with the right one', async () => {
    expect((await scrape(t, null)).status).toBe(401);
    expect((await scrape(t, 'metrics-token-0123456789abcdeX')).status).toBe(401);
    expect((await scrape(t, `${METRICS_TOKEN}0`)).status).toBe(401);
    expect((await scrape(t, t.token('admin', { admin: true }))).status).toBe(401);
    const basic = await t.request('GET', '/metrics', {
      token: null,
      headers: { authorization: `Basic ${METRICS_TOKEN}` },
    });
    expect(basic.status).toBe(401);
    expect(basic.body.code).toBe('unauthorized');

    const ok = await scrape(t, METRICS_TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(PROMETHEUS_TEXT);
    expect(ok.text).toContain('# TYPE media_tasks_created_total counter');
    expect(ok.text).toContain('# TYPE media_task_duration_seconds histogram');
  });

  it('leaves the other routes to the JWT guard', async () => {
    expect((await t.request('GET', `${BASE}/tasks`, { token: METRICS_TOKEN })).status).toBe(401);
    expect((await t.request('GET', '/health/live', { token: null })).status).toBe(200);
  });
});

describe('GET /metrics in each role', () => {
  const redisPrefix = `metrics${process.pid}`;
  let database: { name: string; url: string };
  let api: TestApp;
  let worker: TestApp | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    api = await TestApp.start({ database, redisPrefix, listen: true, env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await api.close();
    await worker?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('the API counts what it creates and sees it wait; the worker counts what it runs', async () => {
    const id = await submitSubtitles(api);
    const waiting = await scrape(api);
    expect(waiting.status).toBe(200);
    expect(
      sample(waiting.text, 'media_tasks_created_total', {
        type: 'subtitle_generation',
        provider: 'none',
        status: 'queued',
      }),
    ).toBe(1);
    // A job with a priority sits in BullMQ's prioritized set until a worker takes it.
    expect(sample(waiting.text, 'media_queue_jobs', { queue: 'tasks', state: 'prioritized' })).toBe(1);

    worker = await TestApp.start({ database, redisPrefix, listen: true, env: { APP_ROLE: 'worker' } });
    await api.waitForTask(id, (x) => x.status === 'completed');
    const ran = await scrapeUntil(
      worker,
      (m) => sample(m, 'media_task_duration_seconds_count', { type: 'subtitle_generation', status: 'completed' }) === 1,
    );
    expect(
      sample(ran, 'media_tasks_finished_total', {
        type: 'subtitle_generation',
        provider: 'subtitle-engine',
        status: 'completed',
      }),
    ).toBe(1);
    // task.created was emitted by the API process: the worker's counter has no sample of it.
    expect(ran).not.toContain('media_tasks_created_total{');
    expect(sample(ran, 'media_queue_jobs', { queue: 'tasks', state: 'prioritized' })).toBe(0);
    const api2 = await scrape(api);
    expect(api2.text).not.toContain('media_tasks_finished_total{');
  });
});
