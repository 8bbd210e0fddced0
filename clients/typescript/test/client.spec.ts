import {
  ConflictError,
  IdempotencyKeyReusedError,
  MediaTasks,
  RateLimitedError,
  TaskFailedError,
  TimeoutError,
  UnauthorizedError,
  ValidationError,
  WebhookVerificationError,
  type RetryInfo,
  type TaskEvent,
  type TaskInput,
} from '../src';
import { HeldConnections } from '../../../src/rate-limit/held-connections.service';
import { TcpProxy } from '../../../test/support/tcp-proxy';
import { TestApp } from '../../../test/support/test-app';
import { waitUntil } from '../../../test/support/wait';
import { WebhookReceiver } from '../../../test/support/webhook-receiver';

/** A Standard Webhooks secret: base64 of 32 bytes after the prefix. */
const WHSEC = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
/** Any other secret is its UTF-8 bytes (here past ASCII, where a Latin-1 reading would differ). */
const PLAIN_SECRET = 'sécret-de-webhook-0123456789';

describe('the TypeScript client against a sandbox platform', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    // One held connection per user: a second event stream of one user is refused with 429 and Retry-After.
    t = await TestApp.start({ sandbox: true, env: { HELD_CONNECTIONS_PER_USER: '1' } });
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  /** A client acting as `user`; `requests` records each request it sends. */
  function client(user: string, options: { retries?: number; onRetry?: (info: RetryInfo) => void } = {}) {
    const requests: string[] = [];
    const media = new MediaTasks({
      baseUrl: t.baseUrl,
      token: t.token(user),
      retry: { retries: options.retries, onRetry: options.onRetry },
      fetch: (request) => {
        requests.push(`${request.method} ${new URL(request.url).pathname}${new URL(request.url).search}`);
        return fetch(request);
      },
    });
    return { media, requests };
  }

  it('creates an image task and waits for it over its live events, which come in order', async () => {
    const { media, requests } = client('creator');
    const events: TaskEvent[] = [];
    // Starting a moment later, the task's whole run happens while the stream is open.
    const runAt = new Date(Date.now() + 1500).toISOString();
    const task = await media.tasks.create(
      'image',
      { prompt: 'a lighthouse at dawn', run_at: runAt },
      { wait: { timeout: 15000, onEvent: (e) => events.push(e) } },
    );

    expect(task.status).toBe('completed');
    expect(task.type).toBe('image_generation');
    const files = task.output?.files as { content_type: string }[];
    expect(files[0].content_type).toBe('image/png');
    expect(events.map((e) => e.event_type)).toEqual(expect.arrayContaining(['task.started', 'task.completed']));
    expect(events.at(-1)).toMatchObject({ event_type: 'task.completed', task_id: task.id });
    const sequences = events.map((e) => e.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);
    // Waited on the stream, not by polling: one create, one stream, one read of the finished task.
    expect(requests).toEqual([
      'POST /api/v1/media/images/generate',
      `GET /api/v1/media/tasks/${task.id}/events`,
      `GET /api/v1/media/tasks/${task.id}`,
    ]);

    const result = await media.tasks.result(task.id);
    expect(result).toMatchObject({ id: task.id, status: 'completed' });
    // A finished task's stream answers its final event alone.
    const replay: TaskEvent[] = [];
    for await (const event of media.tasks.watch(task.id)) replay.push(event);
    expect(replay.map((e) => [e.event_type, e.sequence])).toEqual([['task.completed', events.at(-1)!.sequence]]);
  });

  it('reconnects a dropped stream with Last-Event-ID, and gets the rest without repeats', async () => {
    const proxy = await new TcpProxy('127.0.0.1', Number(new URL(t.baseUrl).port)).start();
    const lastEventIds: (string | null)[] = [];
    const media = new MediaTasks({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      token: t.token('reconnecting'),
      fetch: (request) => {
        if (request.url.endsWith('/events')) lastEventIds.push(request.headers.get('last-event-id'));
        return fetch(request);
      },
    });
    // The provider takes a while, so the task is still running when the connection drops.
    t.sandbox!.knobs.latencyMs = 1500;
    try {
      const runAt = new Date(Date.now() + 1000).toISOString();
      const task = await media.tasks.create('image', { prompt: 'a dropped line', run_at: runAt });
      const events = media.tasks.watch(task.id);
      const started = await events.next();
      expect(started.value).toMatchObject({ event_type: 'task.started' });
      await proxy.stop();
      await proxy.start();
      const rest = await collect({ [Symbol.asyncIterator]: () => events });
      expect(rest.map((e) => e.event_type)).toEqual(['task.completed']);
      expect(lastEventIds).toEqual([null, String((started.value as TaskEvent).sequence)]);
    } finally {
      t.sandbox!.knobs.latencyMs = 0;
      await proxy.stop();
    }
  });

  it('lists tasks past one page, newest first', async () => {
    const { media, requests } = client('lister');
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await media.tasks.create('subtitles', { text: `Line number ${i}.` })).id);
    }
    const listed: string[] = [];
    for await (const task of media.tasks.list({ limit: 2 })) listed.push(task.id);
    expect(listed).toEqual([...created].reverse());
    expect(requests.filter((r) => r.startsWith('GET /api/v1/media/tasks?'))).toHaveLength(3);
  });

  it('answers the first task again for a repeated Idempotency-Key, and refuses the key with another body', async () => {
    const { media } = client('idempotent');
    const input = { text: 'Hello there. General Kenobi.' };
    const first = await media.tasks.create('subtitle_generation', input, { idempotencyKey: 'order-1001' });
    const again = await media.tasks.create('subtitle_generation', input, { idempotencyKey: 'order-1001' });
    expect(again.id).toBe(first.id);
    const other = media.tasks.create('subtitles', { text: 'Another text.' }, { idempotencyKey: 'order-1001' });
    await expect(other).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    const listed: string[] = [];
    for await (const task of media.tasks.list()) listed.push(task.id);
    expect(listed).toEqual([first.id]);
  });

  it('works with an API key as with a bearer token, and says UnauthorizedError for a revoked one', async () => {
    const made = await t.request('POST', '/api/v1/api-keys', {
      token: t.token('admin', { admin: true }),
      body: { owner: 'keyed', name: 'client spec' },
    });
    expect(made.status).toBe(201);
    const media = new MediaTasks({ baseUrl: t.baseUrl, apiKey: made.body.key });
    const task = await media.tasks.create('subtitles', { text: 'Keyed.' }, { wait: { timeout: 10000 } });
    expect([task.status, (await media.tasks.get(task.id)).id]).toEqual(['completed', task.id]);
    const revoked = await t.request('DELETE', `/api/v1/api-keys/${made.body.id}`, {
      token: t.token('admin', { admin: true }),
    });
    expect(revoked.status).toBe(204);
    await expect(media.tasks.get(task.id)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('throws a ValidationError naming each bad field', async () => {
    const { media } = client('validator');
    const bad = { prompt: '', n: 99 } as TaskInput<'image'>;
    const error = await media.tasks.create('image', bad).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    const fields = (error as ValidationError).errors.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['prompt', 'n']));
    expect((error as ValidationError).status).toBe(400);
    expect((error as ValidationError).requestId).toEqual(expect.any(String));
  });

  it('retries a 429 after its Retry-After, and throws RateLimitedError when told not to retry', async () => {
    const retried: RetryInfo[] = [];
    let sawRetry!: () => void;
    const firstRetry = new Promise<void>((resolve) => (sawRetry = resolve));
    const { media } = client('busy', {
      onRetry: (info) => {
        retried.push(info);
        sawRetry();
      },
    });
    const task = await media.tasks.create('image', {
      prompt: 'a slow one',
      run_at: new Date(Date.now() + 60_000).toISOString(),
    });
    // The user's one held connection: a stream of the queued task.
    const holder = media.tasks.watch(task.id);
    const first = holder.next();
    await waitUntil('the first stream to hold its place', () => t.app.get(HeldConnections).size === 1);

    const { media: impatient } = client('busy', { retries: 0 });
    const refused = await impatient.tasks
      .watch(task.id)
      .next()
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).retryAfter).toBe(5);

    // Refused too, the patient client waits the 5 s it was told; meanwhile the task is cancelled, which ends the
    // first stream and frees its place.
    const started = Date.now();
    const watching = collect(media.tasks.watch(task.id));
    await firstRetry;
    await media.tasks.cancel(task.id);
    expect((await first).value).toMatchObject({ event_type: 'task.cancelled' });
    const events = await watching;
    expect(Date.now() - started).toBeGreaterThanOrEqual(5000);
    expect(retried).toEqual([
      { status: 429, attempt: 1, delayMs: 5000, url: expect.stringContaining(`/tasks/${task.id}/events`) },
    ]);
    expect(events.map((e) => e.event_type)).toEqual(['task.cancelled']);
    await expect(media.tasks.result(task.id)).rejects.toBeInstanceOf(TaskFailedError);
    await expect(media.tasks.cancel(task.id)).rejects.toBeInstanceOf(ConflictError);
  }, 20000);

  it('gives up waiting with a TimeoutError, leaving the task to run', async () => {
    const { media } = client('waiter');
    const task = await media.tasks.create('image', {
      prompt: 'later',
      run_at: new Date(Date.now() + 60_000).toISOString(),
    });
    await expect(media.tasks.waitFor(task.id, { timeout: 300 })).rejects.toBeInstanceOf(TimeoutError);
    expect((await media.tasks.get(task.id)).status).toBe('queued');
    await media.tasks.cancel(task.id);
  });

  it.each([
    ['a whsec_ secret', WHSEC],
    ['a plain secret', PLAIN_SECRET],
  ])('verifies a genuine webhook in both schemes and refuses a tampered one (%s)', async (_name, secret) => {
    const { media } = client('hooked');
    const path = `/hooks/${secret === WHSEC ? 'whsec' : 'plain'}`;
    const task = await media.tasks.create('subtitles', {
      text: 'Signed.',
      webhook_url: `${receiver.url}${path}`,
      webhook_secret: secret,
      webhook_events: ['task.completed'],
    });
    const [hook] = await receiver.waitFor((all) => all.some((r) => r.path === path)).then(() => receiver.on(path));

    const event = media.webhooks.verify<TaskEvent>(hook.body, hook.headers, secret);
    expect(event).toMatchObject({ event_type: 'task.completed', task_id: task.id });
    const { 'x-webhook-signature': hex, ...standardOnly } = hook.headers;
    const hexOnly = { 'x-webhook-signature': hex };
    expect(media.webhooks.verify(hook.body, standardOnly, secret)).toEqual(event);
    expect(media.webhooks.verify(hook.body, hexOnly, secret)).toEqual(event);
    expect(
      media.webhooks.verify(Buffer.from(hook.body), new Headers(hexOnly as Record<string, string>), secret),
    ).toEqual(event);

    const tampered = hook.body.replace('"task.completed"', '"task.failed"');
    expect(tampered).not.toBe(hook.body);
    expect(() => media.webhooks.verify(tampered, standardOnly, secret)).toThrow(WebhookVerificationError);
    expect(() => media.webhooks.verify(tampered, hexOnly, secret)).toThrow(WebhookVerificationError);
    const otherSecret = secret === WHSEC ? `whsec_${Buffer.alloc(32, 8).toString('base64')}` : `${secret}x`;
    expect(() => media.webhooks.verify(hook.body, hook.headers, otherSecret)).toThrow(WebhookVerificationError);
    expect(() => media.webhooks.verify(hook.body, hexOnly, otherSecret)).toThrow(WebhookVerificationError);
    expect(() => media.webhooks.verify(hook.body, {}, secret)).toThrow(WebhookVerificationError);
    const stale = { ...standardOnly, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) };
    expect(() => media.webhooks.verify(hook.body, stale, secret)).toThrow(WebhookVerificationError);
  });
});

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterator) items.push(item);
  return items;
}
