import { TEST_QUEUE_BACKEND } from './support/databases';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { RedisCacheState } from '../src/cache/redis-cache-state';
import { ResultCache } from '../src/cache/result-cache.service';
import { TaskType } from '../src/tasks/task.enums';
import { QueueGateway } from '../src/queue/queue.gateway';
import { SINGLE_FLIGHT_WAIT_MS } from '../src/processing/steps/serve-from-cache.step';
import { ScriptedProvider } from './support/scripted-provider';
import { TestApp } from './support/test-app';

const BASE = '/api/v1/media';
const IMAGES = `${BASE}/images/generate`;

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');

interface StoredFile {
  key: string;
  url: string;
  filename: string;
  sha256: string;
  size_bytes: number;
}

describe('the result cache', () => {
  let t: TestApp;
  const provider = new ScriptedProvider('painter', [TaskType.ImageGeneration], [{ delayMs: 300 }], {
    artifacts: [{ contentType: 'image/png', data: PNG, filename: 'fox.png' }],
  });

  beforeAll(async () => {
    t = await TestApp.start({ env: { CACHE_ENABLED: 'true' }, providers: [provider] });
  });
  afterAll(async () => {
    await t.close();
  });
  beforeEach(() => {
    provider.calls.length = 0;
    provider.setScript([{ delayMs: 300 }]);
  });

  const submit = async (body: Record<string, unknown>, as = 'cara') => {
    const res = await t.request('POST', IMAGES, { as, body });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const done = (id: string) => t.waitForTask(id, (x) => x.status === 'completed', 10000);

  it('completes an identical task at once from the first result, at no cost, and still sends its events', async () => {
    const first = await done(await submit({ prompt: 'a red fox', webhook_url: undefined, priority: 'low' }));
    expect(first).toMatchObject({ cached: false, provider: 'painter' });
    expect(provider.calls).toHaveLength(1);
    // Another priority and metadata: the same type and input from the same user, so the same result.
    const secondId = await submit({ prompt: 'a red fox', priority: 'urgent', metadata: { run: 2 } });
    const second = await done(secondId);
    expect(second).toMatchObject({ cached: true, provider: 'painter', cost: { amount: 0 } });
    expect(provider.calls).toHaveLength(1);
    expect({ ...second.output, files: [] }).toEqual({ ...first.output, files: [] });
    expect(t.eventsOf(secondId).map((e) => e.type)).toEqual(['task.created', 'task.started', 'task.completed']);
  });

  it('gives a cached task files of its own: keys under its id, the same bytes, nothing naming the first task', async () => {
    const first = await done(await submit({ prompt: 'an orange cat' }));
    const second = await done(await submit({ prompt: 'an orange cat' }));
    expect(second.cached).toBe(true);
    const [a] = first.output.files as StoredFile[];
    const [b] = second.output.files as StoredFile[];
    expect(b).toMatchObject({ key: `tasks/${second.id}/fox.png`, filename: a.filename, sha256: a.sha256 });
    expect(JSON.stringify(second.output)).not.toContain(first.id);
    const bytes = async (f: StoredFile) => Buffer.from(await (await fetch(`${t.baseUrl}${f.url}`)).arrayBuffer());
    expect(await bytes(b)).toEqual(PNG);
    expect(await bytes(a)).toEqual(PNG);
  });

  it('is kept per user by default: another user’s identical task runs the provider and is not told', async () => {
    const mine = await done(await submit({ prompt: 'a purple owl' }, 'cara'));
    const theirs = await done(await submit({ prompt: 'a purple owl' }, 'carl'));
    expect([mine.cached, theirs.cached]).toEqual([false, false]);
    expect(provider.calls).toHaveLength(2);
    expect(JSON.stringify(theirs)).not.toContain(mine.id);
    // Each user's own repeat is still a hit.
    expect((await done(await submit({ prompt: 'a purple owl' }, 'carl'))).cached).toBe(true);
    expect(provider.calls).toHaveLength(2);
  });

  it('runs the provider again when a task says cache: bypass, or its input differs', async () => {
    await done(await submit({ prompt: 'a blue whale' }));
    const bypass = await done(await submit({ prompt: 'a blue whale', cache: 'bypass' }));
    const other = await done(await submit({ prompt: 'a blue whale', quality: 'hd' }));
    expect(bypass.cached).toBe(false);
    expect(other.cached).toBe(false);
    expect(provider.calls).toHaveLength(3);
  });

  it('shares one provider call among identical tasks in flight together', async () => {
    provider.setScript([{ delayMs: 1300 }]);
    const wakes = jest.spyOn(t.app.get(QueueGateway), 'promoteTaskJob');
    try {
      const ids = await Promise.all(Array.from({ length: 4 }, () => submit({ prompt: 'a green comet' })));
      const tasks = await Promise.all(ids.map(done));
      expect(provider.calls).toHaveLength(1);
      const followers = tasks.filter((x) => x.cached);
      expect(followers).toHaveLength(3);
      // The leader wakes the others when it is done: they would otherwise look again only after a second
      // (SINGLE_FLIGHT_WAIT_MS), so none ends a whole look after it, however busy the machine.
      const woken = new Set(wakes.mock.calls.map(([id]) => id));
      expect(followers.every((x) => woken.has(x.id))).toBe(true);
      const ends = tasks.map((x) => Date.parse(x.completed_at));
      expect(Math.max(...ends) - Math.min(...ends)).toBeLessThan(SINGLE_FLIGHT_WAIT_MS);
    } finally {
      wakes.mockRestore();
    }
  });

  it('finds an entry in Redis (when the queues live there) and on disk when the memory layer has lost it, and reports each layer', async () => {
    const task = await done(await submit({ prompt: 'a silver moon' }));
    const cache = t.app.get(ResultCache);
    const key = cache.keyOf(TaskType.ImageGeneration, task.input, 'cara');
    const onRedis = TEST_QUEUE_BACKEND === 'redis';
    if (onRedis) {
      (cache as unknown as { memory: { clear(): void } }).memory.clear();
      expect((await cache.get(key))?.layer).toBe('redis');
      const shared = (cache as unknown as { shared: RedisCacheState }).shared;
      await shared.redis.client.del(shared.entryKey(key));
    }
    // On Postgres there is no shared entry layer: the memory's loss is made good from the disk at once.
    (cache as unknown as { memory: { clear(): void } }).memory.clear();
    expect((await cache.get(key))?.layer).toBe('disk');

    const stats = await t.request('GET', `${BASE}/cache/stats`, { token: t.token('root', { admin: true }) });
    expect(stats.status).toBe(200);
    expect(stats.body.enabled).toBe(true);
    for (const layer of ['memory', 'redis', 'disk']) {
      expect(stats.body.layers[layer]).toEqual(
        expect.objectContaining({
          hits: expect.any(Number),
          misses: expect.any(Number),
          evictions: expect.any(Number),
        }),
      );
    }
    if (onRedis) expect(stats.body.layers.redis.hits).toBeGreaterThanOrEqual(1);
    else expect(stats.body.layers.redis).toMatchObject({ hits: 0, entries: 0 });
    expect(stats.body.layers.disk.hits).toBeGreaterThanOrEqual(1);
    expect(stats.body.layers.disk.entries).toBeGreaterThanOrEqual(1);
    expect((await t.request('GET', `${BASE}/cache/stats`)).status).toBe(403);
  });

  it('is emptied by an admin (DELETE), after which the provider runs again', async () => {
    await done(await submit({ prompt: 'a golden gate' }));
    expect((await t.request('DELETE', `${BASE}/cache`)).status).toBe(403);
    expect((await t.request('DELETE', `${BASE}/cache`, { token: t.token('root', { admin: true }) })).status).toBe(204);
    const again = await done(await submit({ prompt: 'a golden gate' }));
    expect(again.cached).toBe(false);
    expect(provider.calls).toHaveLength(2);
  });

  it('with CACHE_SCOPE=global, answers every user from one entry, still with files of the task’s own', async () => {
    const shared = await TestApp.start({
      env: { CACHE_ENABLED: 'true', CACHE_SCOPE: 'global' },
      providers: [provider],
    });
    try {
      const submitTo = async (as: string) => {
        const res = await shared.request('POST', IMAGES, { as, body: { prompt: 'a white stag' } });
        expect(res.status).toBe(202);
        return shared.waitForTask(res.body.id as string, (x) => x.status === 'completed', 10000);
      };
      const first = await submitTo('cara');
      const second = await submitTo('carl');
      expect([first.cached, second.cached]).toEqual([false, true]);
      expect(provider.calls).toHaveLength(1);
      expect(second.output.files[0].key).toBe(`tasks/${second.id}/fox.png`);
      expect(JSON.stringify(second)).not.toContain(first.id);
    } finally {
      await shared.close();
    }
  });

  it('evicts disk entries over the size bound when the reconciler sweeps', async () => {
    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.cacheEntriesEvicted).toBe(0); // well under CACHE_DISK_MAX_BYTES
  });
});
