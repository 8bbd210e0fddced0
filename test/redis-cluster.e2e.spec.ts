import type { Cluster } from 'ioredis';
import { ProviderHealthService } from '../src/providers/provider-health.service';
import { TaskEventType, TaskType } from '../src/tasks/task.enums';
import { RedisClusterFixture } from './support/redis-cluster';
import { ScriptedProvider } from './support/scripted-provider';
import { SseClient } from './support/sse-client';
import { SubtitleEngineProvider, TestApp } from './support/test-app';
import { WebhookReceiver } from './support/webhook-receiver';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';

/**
 * The whole platform on a Redis Cluster of three masters (REDIS_CLUSTER=true): BullMQ's scripts, the platform's own
 * scripts and transactions, and pub/sub, each of which fails on a cluster when its keys span slots.
 */
describe('the platform on a three-master Redis Cluster', () => {
  const painter = new ScriptedProvider('painter', [TaskType.ImageGeneration], ['ok'], { cap: 1 });
  let cluster: RedisClusterFixture;
  let receiver: WebhookReceiver;
  let t: TestApp;
  let client: Cluster;
  const open: SseClient[] = [];

  beforeAll(async () => {
    cluster = await RedisClusterFixture.start(3);
    receiver = await WebhookReceiver.start();
    client = cluster.client();
    t = await TestApp.start({
      providers: [painter, new SubtitleEngineProvider()],
      env: {
        REDIS_URL: cluster.url,
        REDIS_CLUSTER: 'true',
        QUEUE_BACKEND: 'redis',
        CACHE_ENABLED: 'true',
        RATE_LIMIT_PER_MINUTE: '1000',
        HELD_CONNECTIONS_PER_USER: '1',
        SSE_HEARTBEAT_MS: '100',
        WEBHOOK_SECRET: 'a-deployment-secret-0123456789abcdef',
      },
    });
  }, 60_000);
  afterEach(() => {
    for (const sse of open.splice(0)) sse.close();
  });
  afterAll(async () => {
    await t?.close();
    client?.disconnect();
    await receiver?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    painter.calls.length = 0;
    painter.setScript(['ok']);
  });

  async function stream(path: string, as: string, opts: { admin?: boolean } = {}): Promise<SseClient> {
    const sse = await SseClient.open(t.baseUrl, path, { authorization: `Bearer ${t.token(as, opts)}` });
    open.push(sse);
    if (sse.status === 200) await sse.until((c) => c.retries.length > 0, 'the stream opening');
    return sse;
  }

  const done = (id: string) => t.waitForTask(id, (x) => x.status === 'completed', 10_000);

  it('runs a subtitle task through BullMQ to completion, live on its own stream and on the admin feed', async () => {
    // The feed of every task is a PSUBSCRIBE; a task's stream a SUBSCRIBE of its channel.
    const feed = await stream(`${BASE}/events?scope=all`, 'root', { admin: true });
    painter.setScript([{ delayMs: 400 }]);
    const slow = await t.request('POST', `${BASE}/images/generate`, { as: 'sue', body: { prompt: 'a slow fox' } });
    expect(slow.status).toBe(202);
    const own = await stream(`${BASE}/tasks/${slow.body.id}/events`, 'sue');
    expect(own.status).toBe(200);

    const subtitles = await t.request('POST', `${BASE}/subtitles/generate`, { as: 'sue', body: { text: 'Hello.' } });
    expect(subtitles.status).toBe(202);
    const task = await done(subtitles.body.id);
    expect(task.output).toBeTruthy();

    const ended = (c: SseClient, id: string) =>
      c.payloads.some((p) => p.task_id === id && p.event_type === TaskEventType.Completed);
    await own.until((c) => ended(c, slow.body.id), 'the slow task completing on its stream');
    await feed.until((c) => ended(c, slow.body.id) && ended(c, subtitles.body.id), 'both tasks on the feed');
    const sequenceOf = (id: string) => feed.payloads.filter((p) => p.task_id === id).map((p) => p.sequence);
    expect(sequenceOf(subtitles.body.id)).toEqual(t.eventsOf(subtitles.body.id).map((e) => e.sequence));
  });

  it('admits provider calls through the capped line and records their outcome (the provider scripts)', async () => {
    painter.setScript([{ delayMs: 200 }, { delayMs: 200 }, { delayMs: 200 }]);
    painter.maxActive = 0;
    const ids = await Promise.all(
      ['one', 'two', 'three'].map(async (prompt) => {
        const res = await t.request('POST', `${BASE}/images/generate`, { as: 'cap', body: { prompt } });
        expect(res.status).toBe(202);
        return res.body.id as string;
      }),
    );
    for (const id of ids) await done(id);
    // Cap 1: one call at a time across the workers, the others waited in line for the freed slot.
    expect(painter.maxActive).toBe(1);
    const [health] = await t.app.get(ProviderHealthService).snapshots(['painter']);
    expect(health).toMatchObject({ circuit: 'closed' });
    expect(health.calls).toBeGreaterThanOrEqual(3);
  });

  it('runs a batch to completion', async () => {
    const tasks = Array.from({ length: 6 }, (_, i) => ({
      task_type: 'subtitle_generation',
      input_data: { text: `Line ${i}. Another line.` },
    }));
    const res = await t.request('POST', `${BASE}/batch`, { as: 'bea', body: { tasks } });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 202 });
    const batch = await waitUntil(
      'the batch to complete',
      async () => (await t.request('GET', `${BASE}/batch/${res.body.batch_id}`, { as: 'bea' })).body,
      { timeoutMs: 15_000, intervalMs: 100, until: (b) => b.completed_at !== null },
    );
    expect(batch.counts).toMatchObject({ completed: 6 });
  });

  it('cancels a running task: the signal reaches the worker, which stops the provider call', async () => {
    painter.setScript(['hang']);
    const res = await t.request('POST', `${BASE}/images/generate`, { as: 'cal', body: { prompt: 'never ends' } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await waitUntil('the provider call to start', () => painter.calls.some((c) => c.taskId === id));
    const cancel = await t.request('POST', `${BASE}/tasks/${id}/cancel`, { as: 'cal' });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('cancelled');
    await waitUntil('the provider call to be aborted', () => painter.aborts.some((a) => a.taskId === id), {
      timeoutMs: 5000,
    });
  });

  it('delivers a signed webhook to a local receiver through the webhooks queue', async () => {
    const res = await t.request('POST', `${BASE}/subtitles/generate`, {
      as: 'wes',
      body: { text: 'Hooked.', webhook_url: `${receiver.url}/cluster`, webhook_events: ['task.completed'] },
    });
    expect(res.status).toBe(202);
    const got = await receiver.waitFor((all) => all.some((r) => r.path === '/cluster'));
    const hook = got.find((r) => r.path === '/cluster')!;
    expect(hook.json).toMatchObject({ event_type: 'task.completed', task_id: res.body.id });
    expect(hook.headers['x-webhook-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('answers an identical task from the shared cache, counting requests per user in the cluster', async () => {
    const first = await t.request('POST', `${BASE}/images/generate`, { as: 'cara', body: { prompt: 'a red fox' } });
    expect((await done(first.body.id)).cached).toBe(false);
    const second = await t.request('POST', `${BASE}/images/generate`, { as: 'cara', body: { prompt: 'a red fox' } });
    expect(await done(second.body.id)).toMatchObject({ cached: true });
    expect(painter.calls).toHaveLength(1);
    // The rate limit counted both in Redis: the headers say so, and so does the counter's key.
    expect(Number(second.headers.get('ratelimit-remaining'))).toBe(
      Number(first.headers.get('ratelimit-remaining')) - 1,
    );
    expect(Number(await client.get(`${t.redisPrefix}:ratelimit:cara`))).toBeGreaterThanOrEqual(2);
  });

  it('holds event streams per user across the cluster: past the cap, 429', async () => {
    const res = await t.request('POST', `${BASE}/subtitles/generate`, { as: 'hal', body: { text: 'Held.' } });
    await done(res.body.id);
    const first = await stream(`${BASE}/events`, 'hal');
    expect(first.status).toBe(200);
    const second = await stream(`${BASE}/events`, 'hal');
    await second.untilEnded();
    expect(second.status).toBe(429);
  });

  it("spreads the platform's keys over the masters, BullMQ's in its prefix's slot", async () => {
    const perNode = await cluster.keysPerNode();
    expect(perNode.filter((n) => n > 0).length).toBeGreaterThan(1);
    const keys = (await Promise.all(client.nodes('master').map((node) => node.keys(`*${t.redisPrefix}*`)))).flat();
    const bull = keys.filter((key) => key.startsWith(`{${t.redisPrefix}}:`));
    expect(bull.some((key) => key.startsWith(`{${t.redisPrefix}}:tasks:`))).toBe(true);
    expect(bull.some((key) => key.startsWith(`{${t.redisPrefix}}:webhooks:`))).toBe(true);
    expect(keys.some((key) => key.startsWith(`${t.redisPrefix}:{provider}:painter:`))).toBe(true);
  });
});
