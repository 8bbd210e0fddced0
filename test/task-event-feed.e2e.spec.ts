import { toEventPayload } from '../src/events/event-payload';
import { TaskEventSubscriptions } from '../src/events/task-event-subscriptions';
import { TaskEventType } from '../src/tasks/task.enums';
import { SseClient } from './support/sse-client';
import { SubtitleEngineProvider, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';
const FEED = `${BASE}/events`;
const HEARTBEAT_MS = 100;

/** The feed of all of a user's tasks (GET /api/v1/media/events) on both queue backends, as the console reads it. */
describe('the live feed of task events', () => {
  let t: TestApp | undefined;
  const app = (): TestApp => t!;
  const open: SseClient[] = [];

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [new SubtitleEngineProvider()],
      env: { SSE_HEARTBEAT_MS: String(HEARTBEAT_MS), HELD_CONNECTIONS_PER_USER: '2' },
    });
  });
  afterEach(() => {
    for (const sse of open.splice(0)) sse.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function feed(headers: Record<string, string>, query = ''): Promise<SseClient> {
    const sse = await SseClient.open(app().baseUrl, `${FEED}${query}`, headers);
    open.push(sse);
    if (sse.status === 200) await sse.until((c) => c.retries.length > 0, 'the stream opening');
    return sse;
  }

  const bearer = (user: string, opts: { admin?: boolean } = {}) => ({
    authorization: `Bearer ${app().token(user, opts)}`,
  });

  async function submit(as: string, text = 'Hello there.'): Promise<string> {
    const res = await app().request('POST', `${BASE}/subtitles/generate`, { body: { text }, as });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  /** The events a feed received for one task, as [sequence, event type]. */
  const eventsOf = (sse: SseClient, taskId: string) =>
    sse.payloads.filter((p) => p.task_id === taskId).map((p) => [p.sequence, p.event_type]);

  const ended = (sse: SseClient, taskId: string) =>
    sse.payloads.some((p) => p.task_id === taskId && p.event_type === TaskEventType.Completed);

  it("streams every event of each of the user's tasks in order, none of another user's; scope=all streams everyone's", async () => {
    const alice = await feed(bearer('alice'));
    const admin = await feed(bearer('root', { admin: true }), '?scope=all');
    expect(alice.status).toBe(200);
    expect(alice.headers['content-type']).toBe('text/event-stream');
    expect(admin.status).toBe(200);

    const [first, second, bobs] = await Promise.all([
      submit('alice', 'One.'),
      submit('alice', 'Two.'),
      submit('bob', 'Three.'),
    ]);
    await alice.until((c) => ended(c, first) && ended(c, second), "both of alice's tasks to complete");
    await admin.until((c) => [first, second, bobs].every((id) => ended(c, id)), 'every task to complete');

    for (const id of [first, second]) {
      const received = eventsOf(alice, id);
      // Each task from its creation to its end, in rising sequence, each body the webhook body the event carried.
      expect(received[0]).toEqual([1, TaskEventType.Created]);
      expect(received.at(-1)?.[1]).toBe(TaskEventType.Completed);
      expect(received.map(([sequence]) => sequence)).toEqual(received.map((_, i) => i + 1));
      const published = new Map(
        app()
          .eventsOf(id)
          .map((e) => [e.sequence, JSON.stringify(toEventPayload(e))]),
      );
      for (const e of alice.events.filter((x) => JSON.parse(x.data).task_id === id)) {
        expect(e.data).toBe(published.get(JSON.parse(e.data).sequence));
        expect(e.event).toBe(JSON.parse(e.data).event_type);
        // Sequences count per task: the feed has no id lines for EventSource to send back.
        expect(e.id).toBeUndefined();
      }
      expect(eventsOf(admin, id)).toEqual(received);
    }
    expect(eventsOf(alice, bobs)).toEqual([]);
    expect(alice.payloads.every((p) => p.user_id === 'alice')).toBe(true);
    expect(eventsOf(admin, bobs)[0]).toEqual([1, TaskEventType.Created]);
    // It stays open after the tasks end.
    expect(alice.ended).toBe(false);
  });

  it('sends heartbeat comments while idle and never closes by itself; a disconnect lets go of the subscription', async () => {
    const sse = await feed(bearer('erin'));
    const subscriptions = app().app.get(TaskEventSubscriptions);
    expect(subscriptions.count({ owner: 'erin' })).toBe(1);
    await sse.until((c) => c.comments.length >= 3, 'three heartbeats', 2000);
    expect(sse.comments.every((c) => c.text === 'heartbeat')).toBe(true);
    expect(sse.ended).toBe(false);
    sse.close();
    await waitUntil('the feed to let go of its subscription', () => subscriptions.count({ owner: 'erin' }) === 0);
  });

  it('refuses scope=all to a non-admin (403), as the lists do', async () => {
    const sse = await feed(bearer('alice'), '?scope=all');
    await sse.untilEnded();
    expect(sse.status).toBe(403);
    expect(JSON.parse(sse.body)).toMatchObject({ code: 'forbidden', message: 'scope=all is for admins' });
    const bad = await feed(bearer('alice'), '?scope=everyone');
    await bad.untilEnded();
    expect(bad.status).toBe(400);
    expect(app().app.get(TaskEventSubscriptions).count({ all: true })).toBe(0);
  });

  it("opens its owner's feed with an X-API-Key, never everyone's; no credentials answer 401", async () => {
    const created = await app().request('POST', '/api/v1/api-keys', {
      token: app().token('root', { admin: true }),
      body: { owner: 'carol', name: 'console' },
    });
    expect(created.status).toBe(201);
    const key = created.body.key as string;

    const sse = await feed({ 'x-api-key': key });
    expect(sse.status).toBe(200);
    const id = await submit('carol');
    await sse.until((c) => ended(c, id), "carol's task to complete");
    expect(eventsOf(sse, id)[0]).toEqual([1, TaskEventType.Created]);

    const all = await feed({ 'x-api-key': key }, '?scope=all');
    await all.untilEnded();
    expect(all.status).toBe(403);

    const none = await feed({});
    await none.untilEnded();
    expect(none.status).toBe(401);
  });

  it('holds one of the HELD_CONNECTIONS_PER_USER places while open, and answers 503 when the channel cannot subscribe', async () => {
    const subscriptions = app().app.get(TaskEventSubscriptions);
    const listen = jest
      .spyOn(subscriptions as unknown as { listen: () => Promise<void> }, 'listen')
      .mockRejectedValueOnce(new Error('connection refused'));
    try {
      const refused = await feed(bearer('frank'));
      await refused.untilEnded();
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'dependency_unavailable' });
    } finally {
      listen.mockRestore();
    }

    // The refused feed gave its place back: the two places are free.
    const first = await feed(bearer('frank'));
    const second = await feed(bearer('frank'));
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await feed(bearer('frank'));
    await third.untilEnded();
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBeDefined();

    first.close();
    await waitUntil('the place to free', async () => {
      const again = await feed(bearer('frank'));
      if (again.status === 200) return true;
      await again.untilEnded();
      return false;
    });
  });

  it('ends open feeds when the server shuts down', async () => {
    const sse = await feed(bearer('alice'));
    const closing = t!;
    t = undefined;
    await closing.close();
    await sse.untilEnded(2000);
    expect(sse.events).toEqual([]);
  });
});
