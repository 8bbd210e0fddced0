import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import Redis from 'ioredis';
import { createHmac } from 'node:crypto';
import { toEventPayload } from '../src/events/event-payload';
import { taskEventsChannel } from '../src/events/task-events.channel';
import { TaskEventSubscriptions } from '../src/events/task-event-subscriptions';
import { QueueName } from '../src/queue/queue.constants';
import { RedisService } from '../src/queue/redis.service';
import { TaskEventType, TaskType } from '../src/tasks/task.enums';
import { PostgresNotifications } from '../src/database/postgres-notifications';
import { postgresTaskEventsChannel } from '../src/events/postgres-task-events';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { ScriptedProvider } from './support/scripted-provider';
import { SseClient } from './support/sse-client';
import { deleteRedisKeys, SubtitleEngineProvider, TEST_JWT_SECRET, TestApp } from './support/test-app';
import { waitUntil as waitFor } from './support/wait';

const BASE = '/api/v1/media';
const HEARTBEAT_MS = 100;

function bearer(app: TestApp, user = 'alice'): Record<string, string> {
  return { authorization: `Bearer ${app.token(user)}` };
}

async function waitUntil(predicate: () => Promise<boolean> | boolean, what: string, timeoutMs = 3000): Promise<void> {
  await waitFor(what, predicate, { timeoutMs });
}

describe('live task events (Server-Sent Events)', () => {
  const images = new ScriptedProvider('scripted-images', [TaskType.ImageGeneration]);
  let t: TestApp;
  let tasksQueue: Queue;

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [images, new SubtitleEngineProvider()],
      env: { SSE_HEARTBEAT_MS: String(HEARTBEAT_MS) },
    });
    tasksQueue = t.app.get<Queue>(getQueueToken(QueueName.Tasks));
  });
  afterAll(async () => {
    await t.close();
  });

  async function submit(kind: 'image' | 'subtitles', as = 'alice'): Promise<string> {
    const res =
      kind === 'image'
        ? await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a fox' }, as })
        : await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Hello there.' }, as });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  /** Runs `fn` with the workers held off the tasks queue, so a task stays queued until the test lets it go. */
  /** Publishes raw messages on a task's channel as another process of the deployment would, in order. */
  async function publishOnTaskChannel(taskId: string, messages: string[]): Promise<void> {
    if (TEST_QUEUE_BACKEND === 'postgres') {
      for (const message of messages)
        await t.dataSource.query('SELECT pg_notify($1, $2)', [postgresTaskEventsChannel(taskId), message]);
      return;
    }
    const redis = new Redis(REDIS_URL);
    try {
      for (const message of messages) await redis.publish(taskEventsChannel(t.app.get(RedisService), taskId), message);
    } finally {
      redis.disconnect();
    }
  }

  async function whilePaused<T>(fn: (resume: () => Promise<void>) => Promise<T>): Promise<T> {
    await tasksQueue.pause();
    let resumed = false;
    const resume = async () => {
      if (!resumed) await tasksQueue.resume();
      resumed = true;
    };
    try {
      return await fn(resume);
    } finally {
      await resume();
    }
  }

  /** The webhook bodies of a task's events as this process published them, by sequence. */
  function publishedBodies(app: TestApp, id: string): Map<number, string> {
    return new Map(app.eventsOf(id).map((e) => [e.sequence, JSON.stringify(toEventPayload(e))]));
  }

  it('(a) streams a running task in sequence order, each data the webhook body, and closes after the terminal event', async () => {
    images.setScript([{ delayMs: 150, progress: [0.5] }]);
    const { id, sse } = await whilePaused(async (resume) => {
      const id = await submit('image');
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
      expect(sse.status).toBe(200);
      await resume();
      return { id, sse };
    });
    await sse.untilEnded();

    expect(sse.headers['content-type']).toBe('text/event-stream');
    expect(sse.headers['cache-control']).toBe('no-cache');
    expect(sse.headers['x-accel-buffering']).toBe('no');
    expect(sse.body.startsWith('retry: 2000\n\n')).toBe(true);
    expect(sse.events.map((e) => e.event)).toEqual([
      TaskEventType.Started,
      TaskEventType.Progress,
      TaskEventType.Completed,
    ]);
    expect(sse.events.map((e) => Number(e.id))).toEqual([2, 3, 4]);
    const published = publishedBodies(t, id);
    for (const e of sse.events) expect(e.data).toBe(published.get(Number(e.id)));
    expect(sse.payloads.map((p) => [p.task_id, p.sequence, p.data.status])).toEqual([
      [id, 2, 'processing'],
      [id, 3, 'processing'],
      [id, 4, 'completed'],
    ]);
    await waitUntil(() => t.app.get(TaskEventSubscriptions).count({ task: id }) === 0, 'subscription released');
  });

  it('honours Last-Event-ID: events up to it are not sent again', async () => {
    images.setScript([{ delayMs: 100, progress: [0.5] }]);
    const sse = await whilePaused(async (resume) => {
      const id = await submit('image');
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, {
        ...bearer(t),
        'last-event-id': '3',
      });
      await resume();
      return sse;
    });
    await sse.untilEnded();
    expect(sse.events.map((e) => [e.id, e.event])).toEqual([['4', TaskEventType.Completed]]);
  });

  it('sends each sequence once: a repeated or older event on the channel is dropped', async () => {
    await whilePaused(async () => {
      const id = await submit('image');
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
      await sse.until((c) => c.retries.length > 0, 'the stream opening');
      const body = (sequence: number, event_type: TaskEventType) =>
        JSON.stringify({ event_type, task_id: id, sequence, timestamp: new Date().toISOString(), data: {} });
      // As another process would publish them: one event, the same again, an older one, then the last.
      await publishOnTaskChannel(
        id,
        (
          [
            [2, TaskEventType.Started],
            [2, TaskEventType.Started],
            [1, TaskEventType.Created],
            [3, TaskEventType.Failed],
          ] as const
        ).map(([sequence, type]) => body(sequence, type)),
      );
      await sse.untilEnded();
      expect(sse.events.map((e) => [e.id, e.event])).toEqual([
        ['2', TaskEventType.Started],
        ['3', TaskEventType.Failed],
      ]);
    });
  });

  it('(b) a task that has already finished gets its terminal event, then the stream closes', async () => {
    const id = await submit('subtitles');
    const done = await t.waitForTask(id, (x) => x.status === 'completed');
    const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
    await sse.untilEnded();
    expect(sse.status).toBe(200);
    expect(sse.retries).toEqual([2000]);
    expect(sse.events).toHaveLength(1);
    const [final] = sse.events;
    expect(final.event).toBe(TaskEventType.Completed);
    const completed = t.eventsOf(id).find((e) => e.type === TaskEventType.Completed)!;
    expect(final.id).toBe(String(completed.sequence));
    // Rebuilt from the row, it is the very body the live event carried.
    expect(JSON.parse(final.data)).toEqual(JSON.parse(JSON.stringify(toEventPayload(completed))));
    expect(JSON.parse(final.data).data.output_data.content).toBe(done.output.content);

    // A client that already has the final event (EventSource reconnecting) gets 204, which stops it.
    const again = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, {
      ...bearer(t),
      'last-event-id': final.id,
    });
    await again.untilEnded();
    expect(again.status).toBe(204);
    expect(again.events).toEqual([]);
    expect(t.app.get(TaskEventSubscriptions).count({ task: id })).toBe(0);
  });

  it('a failed task ends its stream with task.failed and the error', async () => {
    images.setScript(['permanent']);
    const sse = await whilePaused(async (resume) => {
      const id = await submit('image');
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
      await resume();
      return sse;
    });
    await sse.untilEnded();
    expect(sse.events.map((e) => e.event)).toEqual([TaskEventType.Started, TaskEventType.Failed]);
    expect(sse.payloads[1].data.error).toEqual({ code: 'content_policy', message: 'the prompt was refused' });
  });

  describe('(d) authentication', () => {
    let finished: string;
    let other: string;

    beforeAll(async () => {
      finished = await submit('subtitles');
      other = await submit('subtitles');
      await t.waitForTask(finished, (x) => x.status === 'completed');
      await t.waitForTask(other, (x) => x.status === 'completed');
    });

    async function mint(id: string, as = 'alice') {
      return t.request('POST', `${BASE}/tasks/${id}/events/token`, { as });
    }

    it('the token endpoint answers a 5-minute token scoped to the task, and a URL EventSource can open', async () => {
      const res = await mint(finished);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['expires_at', 'token', 'url']);
      expect(res.body.url).toBe(`${BASE}/tasks/${finished}/events?token=${res.body.token}`);
      const claims = JSON.parse(Buffer.from(res.body.token.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ sub: 'alice', scope: 'task-events', task: finished });
      expect(claims.exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(290);
      expect(claims.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(300);
      expect(new Date(res.body.expires_at).getTime()).toBe(claims.exp * 1000);

      const sse = await SseClient.open(t.baseUrl, res.body.url);
      await sse.untilEnded();
      expect(sse.status).toBe(200);
      expect(sse.events.map((e) => e.event)).toEqual([TaskEventType.Completed]);
    });

    it("task A's token does not open task B's stream", async () => {
      const { body } = await mint(finished);
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${other}/events?token=${body.token}`);
      await sse.untilEnded();
      expect(sse.status).toBe(401);
      expect(sse.events).toEqual([]);
    });

    it('a full token is refused in the query string, though it works as a bearer', async () => {
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${finished}/events?token=${t.token('alice')}`);
      await sse.untilEnded();
      expect(sse.status).toBe(401);
      expect(JSON.parse(sse.body).message).toMatch(/only a scoped token/);
      const withHeader = await SseClient.open(t.baseUrl, `${BASE}/tasks/${finished}/events`, bearer(t));
      await withHeader.untilEnded();
      expect(withHeader.status).toBe(200);
    });

    it('no token, an expired or forged scoped token → 401', async () => {
      const none = await SseClient.open(t.baseUrl, `${BASE}/tasks/${finished}/events`);
      await none.untilEnded();
      expect(none.status).toBe(401);

      const claims = { sub: 'alice', scope: 'task-events', task: finished };
      const expired = signWith(TEST_JWT_SECRET, { ...claims, exp: Math.floor(Date.now() / 1000) - 10 });
      const forged = signWith('another-secret-0123456789abcdef0123456789', {
        ...claims,
        exp: Math.floor(Date.now() / 1000) + 60,
      });
      for (const token of [expired, forged]) {
        const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${finished}/events?token=${token}`);
        await sse.untilEnded();
        expect(sse.status).toBe(401);
      }
    });

    it('a scoped token opens nothing else, not even as a bearer', async () => {
      const { body } = await mint(finished);
      const asBearer = { token: body.token as string };
      expect((await t.request('GET', `${BASE}/tasks/${finished}`, asBearer)).status).toBe(401);
      expect((await t.request('GET', `${BASE}/tasks`, asBearer)).status).toBe(401);
      expect((await t.request('POST', `${BASE}/tasks/${finished}/events/token`, asBearer)).status).toBe(401);
      expect((await t.request('GET', `${BASE}/tasks/${finished}?token=${body.token}`, { token: null })).status).toBe(
        401,
      );
      // On its own stream it is accepted as a bearer too.
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${finished}/events`, {
        authorization: `Bearer ${body.token}`,
      });
      await sse.untilEnded();
      expect(sse.status).toBe(200);
    });

    it('the token endpoint wants a normal token and answers 404 for a task that is not yours', async () => {
      expect((await t.request('POST', `${BASE}/tasks/${finished}/events/token`, { token: null })).status).toBe(401);
      expect((await mint(finished, 'bob')).status).toBe(404);
      expect((await mint('00000000-0000-4000-8000-000000000000')).status).toBe(404);
    });
  });

  it('is documented in the OpenAPI document', async () => {
    const { body } = await t.request('GET', '/docs-json', { token: null });
    const stream = body.paths['/api/v1/media/tasks/{id}/events'].get;
    expect(Object.keys(stream.responses['200'].content)).toEqual(['text/event-stream']);
    expect(stream.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()).toEqual([
      'header:Last-Event-ID',
      'path:id',
      'query:token',
    ]);
    const token = body.paths['/api/v1/media/tasks/{id}/events/token'].post;
    expect(token.responses['201']).toBeDefined();
    expect(token.responses['404']).toBeDefined();
  });

  it("(e) another user's task, an unknown task and a malformed id answer like the other task routes", async () => {
    const id = await submit('subtitles');
    await t.waitForTask(id, (x) => x.status === 'completed');
    const cases = [
      { path: `${BASE}/tasks/${id}/events`, as: 'bob' },
      { path: `${BASE}/tasks/00000000-0000-4000-8000-000000000000/events`, as: 'alice' },
      { path: `${BASE}/tasks/not-a-uuid/events`, as: 'alice' },
    ];
    for (const { path, as } of cases) {
      const sse = await SseClient.open(t.baseUrl, path, bearer(t, as));
      await sse.untilEnded();
      const get = await t.request('GET', path.replace(/\/events$/, ''), { as });
      expect([path, sse.status]).toEqual([path, get.status]);
      expect(sse.status).toBe(404);
      expect(JSON.parse(sse.body)).toMatchObject({ code: 'not_found' });
    }
    expect(t.app.get(TaskEventSubscriptions).count({ task: id })).toBe(0);
  });

  it('(f) sends heartbeat comments every SSE_HEARTBEAT_MS while idle; a cancel from the API ends the stream', async () => {
    await whilePaused(async () => {
      const id = await submit('image');
      const sse = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
      const opened = Date.now();
      await sse.until((c) => c.comments.length >= 3, 'three heartbeats', 2000);
      expect(sse.comments.every((c) => c.text === 'heartbeat')).toBe(true);
      expect(sse.comments[0].at - opened).toBeGreaterThanOrEqual(HEARTBEAT_MS * 0.8);
      expect(sse.comments[2].at - sse.comments[0].at).toBeGreaterThanOrEqual(HEARTBEAT_MS * 1.6);
      expect(sse.events).toEqual([]);
      expect(sse.ended).toBe(false);

      expect((await t.request('POST', `${BASE}/tasks/${id}/cancel`)).status).toBe(200);
      await sse.untilEnded();
      expect(sse.events.map((e) => [e.id, e.event])).toEqual([['2', TaskEventType.Cancelled]]);
      // The server closed its side too: the stream let go of its subscription, and with it its heartbeat timer.
      const subscriptions = t.app.get(TaskEventSubscriptions);
      await waitUntil(() => subscriptions.count({ task: id }) === 0, 'the stream to let go of its subscription');
    });
  });

  it('(g) streams of a task share one subscription of the channel, released when the last client disconnects', async () => {
    const subscriptions = t.app.get(TaskEventSubscriptions);
    const redis = new Redis(REDIS_URL);
    /** How many subscriptions of the task's channel the backend itself counts. */
    const numsub = async (id: string) => {
      if (TEST_QUEUE_BACKEND === 'redis') {
        const reply = await redis.pubsub('NUMSUB', taskEventsChannel(t.app.get(RedisService), id));
        return Number(reply[1]);
      }
      // One listener connection per process, whatever the number of channels and streams.
      const [{ n }] = await t.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'media-tasks-listener' AND datname = current_database()`,
      );
      expect(n).toBeLessThanOrEqual(1);
      const channels = await t.app.get(PostgresNotifications).listenedChannels();
      return channels.filter((c) => c === postgresTaskEventsChannel(id)).length;
    };
    try {
      await whilePaused(async () => {
        const id = await submit('image');
        const first = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
        const second = await SseClient.open(t.baseUrl, `${BASE}/tasks/${id}/events`, bearer(t));
        await first.until((c) => c.retries.length > 0, 'the stream opening');
        await second.until((c) => c.retries.length > 0, 'the stream opening');
        expect(subscriptions.count({ task: id })).toBe(2);
        expect(await numsub(id)).toBe(1);

        first.close();
        await waitUntil(() => subscriptions.count({ task: id }) === 1, 'one listener left');
        expect(await numsub(id)).toBe(1);
        const heartbeats = second.comments.length;
        await second.until((c) => c.comments.length > heartbeats, 'the survivor still streaming');

        second.close();
        await waitUntil(() => subscriptions.count({ task: id }) === 0, 'no listener left');
        await waitUntil(async () => (await numsub(id)) === 0, 'the channel no longer listened to');
      });
    } finally {
      redis.disconnect();
    }
  });
});

describe('(c) live events across processes', () => {
  const redisPrefix = `events${process.pid}`;
  let database: { name: string; url: string };
  let api: TestApp | undefined;
  let worker: TestApp | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    api = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it("a client of an API process sees the events a worker process makes, and the API process's shutdown ends streams", async () => {
    const apiApp = api!;
    const res = await apiApp.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Across processes.' } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const sse = await SseClient.open(apiApp.baseUrl, `${BASE}/tasks/${id}/events`, bearer(apiApp));
    await sse.until((c) => c.retries.length > 0, 'the stream opening');

    worker = await TestApp.start({ database, redisPrefix, env: { APP_ROLE: 'worker' } });
    await sse.untilEnded();
    expect(sse.events.map((e) => [e.id, e.event])).toEqual([
      ['2', TaskEventType.Started],
      ['3', TaskEventType.Completed],
    ]);
    // The events were made in the worker process (the API process only announced the task's creation).
    expect(apiApp.eventsOf(id).map((e) => e.type)).toEqual([TaskEventType.Created]);
    const published = new Map(worker.eventsOf(id).map((e) => [e.sequence, JSON.stringify(toEventPayload(e))]));
    for (const e of sse.events) expect(e.data).toBe(published.get(Number(e.id)));
    expect(sse.payloads[1].data.output_data.content).toContain('Across processes.');
    expect(apiApp.app.get(TaskEventSubscriptions).count({ task: id })).toBe(0);

    // With no worker, a new task stays queued and its stream stays open until the API process shuts down.
    await worker.close();
    worker = undefined;
    const queued = await apiApp.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Never run.' } });
    const open = await SseClient.open(apiApp.baseUrl, `${BASE}/tasks/${queued.body.id}/events`, bearer(apiApp));
    await open.until((c) => c.retries.length > 0, 'the stream opening');
    await apiApp.close();
    api = undefined;
    await open.untilEnded(1000);
    expect(open.events).toEqual([]);
  });
});

/** An HS256 JWT with exactly these claims (signToken makes full tokens only). */
function signWith(secret: string, claims: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify({ iat: Math.floor(Date.now() / 1000), ...claims })).toString('base64url');
  const signature = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${signature}`;
}
