import { ProviderHealthService } from '../src/providers/provider-health.service';
import { ProviderRegistry } from '../src/providers/provider.registry';
import { TaskType } from '../src/tasks/task.enums';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import { ScriptedProvider } from './support/scripted-provider';
import { deleteRedisKeys, SubtitleEngineProvider, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const BASE = '/api/v1/media';
const IMAGE = [TaskType.ImageGeneration];

describe('routing: strategies, fallback, circuits', () => {
  const fine = new ScriptedProvider('fine', IMAGE, ['ok'], { quality: 0.9, cost: 0.1 });
  const cheap = new ScriptedProvider('cheap', IMAGE, ['ok'], { quality: 0.5, cost: 0.01 });
  const middle = new ScriptedProvider('middle', IMAGE, ['ok'], { quality: 0.7, cost: 0.05 });
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [fine, cheap, middle, new SubtitleEngineProvider()],
      env: { PROVIDER_CIRCUIT_THRESHOLD: '3', PROVIDER_CIRCUIT_COOLDOWN_MS: '800', TASK_RETRY_DELAYS: '50' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  async function run(body: Record<string, unknown>): Promise<any> {
    const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a fox', ...body } });
    expect(res.status).toBe(202);
    return t.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed');
  }

  it("orders providers by the task's strategy, or runs the pinned one", async () => {
    expect((await run({ strategy: 'quality' })).provider).toBe('fine');
    expect((await run({ strategy: 'cost' })).provider).toBe('cheap');
    expect((await run({ provider: 'middle', strategy: 'cost' })).provider).toBe('middle');
    const done = await run({ strategy: 'cost' });
    expect(done.cost).toEqual({ amount: 0.01, currency: 'USD' });
  });

  it('falls back to the next provider on a transient failure, within the same attempt', async () => {
    fine.setScript(['transient', 'ok']);
    const task = await run({ strategy: 'quality' });
    expect(task.status).toBe('completed');
    expect(task.provider).toBe('middle');
    expect(task.attempts).toBe(1);
    const providers = await t.request('GET', `${BASE}/providers`);
    const health = providers.body.data.find((p: { name: string }) => p.name === 'fine').health;
    expect(health.failures).toBeGreaterThanOrEqual(1);
    expect(health.success_rate).toBeLessThan(1);
  });

  it('does not fall back on a permanent failure', async () => {
    fine.setScript(['permanent', 'ok']);
    const task = await run({ strategy: 'quality' });
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('content_policy');
    expect(task.provider).toBe('fine');
  });

  it("opens a failing provider's circuit, skips it, then lets one trial call through after the cool-down", async () => {
    fine.setScript(['transient']);
    for (let i = 0; i < 3; i++) expect((await run({ strategy: 'quality' })).provider).toBe('middle');
    let listed = await t.request('GET', `${BASE}/providers`);
    expect(listed.body.data.find((p: { name: string }) => p.name === 'fine').health.circuit_state).toBe('open');
    const callsWhenOpen = fine.calls.length;
    expect((await run({ strategy: 'quality' })).provider).toBe('middle');
    expect(fine.calls.length).toBe(callsWhenOpen); // skipped, not called
    fine.setScript(['ok']);
    const circuit = async () =>
      (await t.request('GET', `${BASE}/providers`)).body.data.find((p: { name: string }) => p.name === 'fine').health
        .circuit_state as string;
    await waitUntil('the cool-down to pass', circuit, { timeoutMs: 5000, until: (state) => state === 'half_open' });
    expect((await run({ strategy: 'quality' })).provider).toBe('fine');
    listed = await t.request('GET', `${BASE}/providers`);
    expect(listed.body.data.find((p: { name: string }) => p.name === 'fine').health.circuit_state).toBe('closed');
  });

  it('orders by measured speed, reliability and load when those strategies are asked for', async () => {
    const health = t.app.get(ProviderHealthService);
    const registry = t.app.get(ProviderRegistry);
    const task = { type: TaskType.ImageGeneration, input: { prompt: 'x' } } as const;
    const names = (list: { name: string }[]) => list.map((p) => p.name);
    await health.record('cheap', true, 10);
    await health.record('middle', true, 400);
    await health.record('fine', true, 900);
    expect(names(await registry.route(task, { strategy: 'speed' as never }))).toEqual(['cheap', 'middle', 'fine']);
    for (let i = 0; i < 3; i++) await health.record('cheap', false, 10);
    const reliable = names(await registry.route(task, { strategy: 'reliability' as never }));
    expect(reliable.indexOf('cheap')).toBe(2);
    // cheap's circuit is open now; close it again with a success so the next tests see three candidates.
    await health.record('cheap', true, 10);
    expect(await health.admit('middle', 'task-a', 10, 10_000)).toBe('admitted');
    expect(await health.admit('middle', 'task-b', 10, 10_000)).toBe('admitted');
    expect(await health.admit('fine', 'task-c', 10, 10_000)).toBe('admitted');
    const balanced = names(await registry.route(task, { strategy: 'load_balancing' as never }));
    expect(balanced).toEqual(['cheap', 'fine', 'middle']);
    expect(await health.admit('fine', 'task-d', 1, 10_000)).toBe('capped');
    for (const [name, id] of [
      ['middle', 'task-a'],
      ['middle', 'task-b'],
      ['fine', 'task-c'],
    ])
      await health.release(name, id);
  });

  it('gives a freed slot of a capped provider to the oldest waiter, not to whoever asks first', async () => {
    const health = t.app.get(ProviderHealthService);
    const line = (ticket: number) => ({ ticket, staleMs: 300 });
    expect(await health.admit('lined', 'holder', 1, 10_000, line(5))).toBe('admitted');
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('capped');
    expect(await health.admit('lined', 'old', 1, 10_000, line(10))).toBe('capped');
    await health.release('lined', 'holder');
    // The slot is free, but 'old' stands before 'young'.
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('capped');
    expect(await health.admit('lined', 'old', 1, 10_000, line(10))).toBe('admitted');
    await health.release('lined', 'old');
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('admitted');
    await health.release('lined', 'young');
    // A task put in line ahead of time keeps its place; one that stops asking leaves the line after staleMs.
    await health.join('lined', ['part-0'], 1);
    expect(await health.admit('lined', 'other', 1, 10_000, line(20))).toBe('capped');
    const admitted = await waitUntil(
      'part-0 to leave the line',
      () => health.admit('lined', 'other', 1, 10_000, line(20)),
      {
        timeoutMs: 3000,
        until: (answer) => answer === 'admitted',
      },
    );
    expect(admitted).toBe('admitted');
    await health.release('lined', 'other');
  });

  it('lists every provider with its task types, cost model, quality and health', async () => {
    const res = await t.request('GET', `${BASE}/providers`);
    expect(res.status).toBe(200);
    const sub = res.body.data.find((p: { name: string }) => p.name === 'subtitle-engine');
    expect(sub).toMatchObject({
      task_types: ['subtitle_generation'],
      configured: true,
      quality_score: 0.6,
      health: expect.objectContaining({ circuit_state: 'closed' }),
    });
  });

  it('reports statistics: success rate, durations, cost by provider, queued by priority', async () => {
    const res = await t.request('GET', `${BASE}/statistics`);
    expect(res.status).toBe(200);
    expect(res.body.success_rate).toBeGreaterThan(0);
    expect(res.body.success_rate).toBeLessThan(1);
    expect(res.body.mean_duration_ms_by_type.image_generation).toEqual(expect.any(Number));
    expect(res.body.total_cost_by_provider.cheap.amount).toBeCloseTo(0.02, 6);
    expect(res.body.provider_health.fine).toBeDefined();
    expect((await t.request('GET', `${BASE}/statistics?scope=all`)).status).toBe(403);
    const other = await t.request('GET', `${BASE}/statistics`, { as: 'nobody' });
    expect(other.body.tasks_by_status).toEqual({});
  });

  it('a provider pinned for another task type leaves the task with no_provider', async () => {
    const res = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'x', provider: 'fine' } });
    expect(res.status).toBe(202);
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'failed');
    expect(task.error.code).toBe('no_provider');
  });
});

describe('cluster-wide concurrency caps', () => {
  it('never runs more than the cap at once across two worker processes, and a capped provider blocks no one else', async () => {
    const capped = new ScriptedProvider('capped', IMAGE, [{ delayMs: 300 }], { cap: 2 });
    const database = await createTestDatabase();
    const redisPrefix = `cap${process.pid}`;
    const providers = [capped, new SubtitleEngineProvider()];
    // A capped task looks for a slot again only after 10 s here (PROVIDER_POLL_SCALE): finishing within a few
    // seconds takes the wake-up of the first in line when a slot is freed, however busy the machine is.
    const env = { WORKER_CONCURRENCY: '4', PROVIDER_POLL_SCALE: '10' };
    const a = await TestApp.start({ database, redisPrefix, providers, env });
    const b = await TestApp.start({ database, redisPrefix, providers, env: { ...env, APP_ROLE: 'worker' } });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await a.request('POST', `${BASE}/images/generate`, { body: { prompt: `p${i}` } });
        ids.push(res.body.id);
      }
      // While the capped provider is saturated, a task bound elsewhere still runs at once.
      const sub = await a.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Not blocked.' } });
      const subtitle = await a.waitForTask(sub.body.id, (x) => x.status === 'completed', 3000);
      expect(subtitle.status).toBe('completed');
      const done = await Promise.all(ids.map((id) => a.waitForTask(id, (x) => x.status === 'completed', 20000)));
      expect(done.every((x) => x.provider === 'capped')).toBe(true);
      expect(capped.maxActive).toBe(2);
      expect(capped.calls).toHaveLength(6);
      // A freed slot wakes the first task in line at once (its own next look would come only ten seconds later), so
      // three rounds of 300 ms take about 900 ms, not twenty seconds.
      const starts = capped.calls.map((c) => c.at);
      expect(Math.max(...starts) - Math.min(...starts)).toBeLessThan(5000);
    } finally {
      await b.close();
      await a.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });
});
