import { connectedRedis, openStateBackend, STATE_BACKENDS, StateBackendClients } from '../../test/state-backends';
import { waitUntil } from '../../test/support/wait';
import { AppConfig } from '../config/app-config';
import { SqlClient } from '../database/sql-client';
import { PostgresProviderHealth } from './postgres-provider-health';
import { ProviderHealthService } from './provider-health.service';
import { RedisProviderHealth } from './redis-provider-health';

const COOLDOWN_MS = 300;

function healthOf(clients: StateBackendClients, config = clients.config): ProviderHealthService {
  return clients.backend === 'postgres'
    ? new PostgresProviderHealth(clients.sql, config)
    : new RedisProviderHealth(clients.redis, config);
}

describe.each(STATE_BACKENDS)('provider health and caps on %s', (backend) => {
  let clients: StateBackendClients;
  let health: ProviderHealthService;
  /** A second process of the same deployment: its own clients, the same database and prefix. */
  let other: { health: ProviderHealthService; close: () => Promise<void> };

  beforeAll(async () => {
    clients = await openStateBackend(backend, {
      PROVIDER_CIRCUIT_THRESHOLD: '3',
      PROVIDER_CIRCUIT_COOLDOWN_MS: String(COOLDOWN_MS),
    });
    health = healthOf(clients);
    const config = AppConfig.fromEnv(clients.env);
    const sql = new SqlClient(config, clients.dataSource);
    const redis = await connectedRedis(config);
    other = {
      health: backend === 'postgres' ? new PostgresProviderHealth(sql, config) : new RedisProviderHealth(redis, config),
      close: async () => {
        await redis.onApplicationShutdown();
        await sql.onApplicationShutdown();
      },
    };
  });
  afterAll(async () => {
    await other?.close();
    await clients?.close();
  });

  it('knows nothing of a provider never called', async () => {
    expect(await health.snapshot('unknown')).toEqual({
      successRate: 1,
      latencyMs: null,
      inFlight: 0,
      circuit: 'closed',
      calls: 0,
      failures: 0,
    });
  });

  it('smooths success rate and latency over the calls it is told of', async () => {
    await health.record('smooth', true, 100);
    await health.record('smooth', true, 200);
    await health.record('smooth', false, 5000);
    // latency: 100, then 100 + 0.2 × (200 − 100); a failure leaves it. success: 1, 1, then 1 + 0.2 × (0 − 1).
    expect(await other.health.snapshot('smooth')).toEqual({
      successRate: 0.8,
      latencyMs: 120,
      inFlight: 0,
      circuit: 'closed',
      calls: 3,
      failures: 1,
    });
    const [a, b] = await health.snapshots(['smooth', 'unknown-too']);
    expect([a.calls, b.calls]).toEqual([3, 0]);
  });

  it('opens the circuit after consecutive failures, lets exactly one trial through after the cool-down', async () => {
    await health.record('flaky', false, 10);
    await health.record('flaky', true, 10); // a success starts the count again
    for (let i = 0; i < 3; i++) await health.record('flaky', false, 10);
    expect((await health.snapshot('flaky')).circuit).toBe('open');
    expect(await health.admit('flaky', 'early', 5, 10_000)).toBe('circuit_open');
    await waitUntil('the cool-down to pass', () => health.snapshot('flaky'), {
      timeoutMs: 5000,
      until: (h) => h.circuit === 'half_open',
    });
    const callers = ['t1', 't2', 't3', 't4'];
    const answers = await Promise.all(
      callers.map((id, i) => (i % 2 ? other.health : health).admit('flaky', id, 5, 10_000)),
    );
    expect(answers.filter((a) => a === 'admitted')).toHaveLength(1);
    expect(answers.filter((a) => a === 'circuit_open')).toHaveLength(3);
    // The trial fails: open again, for a whole cool-down.
    await health.record('flaky', false, 10, callers[answers.indexOf('admitted')]);
    expect((await health.snapshot('flaky')).circuit).toBe('open');
    expect(await health.admit('flaky', 't5', 5, 10_000)).toBe('circuit_open');
    await waitUntil('the cool-down to pass again', () => health.admit('flaky', 't6', 5, 10_000), {
      timeoutMs: 5000,
      until: (answer) => answer === 'admitted',
    });
    await health.record('flaky', true, 10, 't6');
    expect((await health.snapshot('flaky')).circuit).toBe('closed');
    expect(await health.admit('flaky', 't7', 5, 10_000)).toBe('admitted');
    await health.release('flaky', 't7');
  });

  it('holds an uncapped provider to its circuit too, and counts every caller it admits in flight', async () => {
    const uncapped = Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < 3; i++) await health.record('open-door', false, 10);
    expect(await other.health.admit('open-door', 'early', uncapped, 10_000)).toBe('circuit_open');
    await waitUntil('the cool-down to pass', () => health.snapshot('open-door'), {
      timeoutMs: 5000,
      until: (h) => h.circuit === 'half_open',
    });
    const trial = await Promise.all(
      ['t1', 't2', 't3'].map((id, i) => (i % 2 ? other.health : health).admit('open-door', id, uncapped, 10_000)),
    );
    expect(trial.filter((a) => a === 'admitted')).toHaveLength(1);
    await health.record('open-door', true, 10, ['t1', 't2', 't3'][trial.indexOf('admitted')]);
    const ids = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    const answers = await Promise.all(
      ids.map((id, i) => (i % 2 ? other.health : health).admit('open-door', id, uncapped, 10_000)),
    );
    expect(answers.every((a) => a === 'admitted')).toBe(true);
    expect((await health.snapshot('open-door')).inFlight).toBe(20);
    for (const id of ids) await health.release('open-door', id);
    expect((await health.snapshot('open-door')).inFlight).toBe(0);
  });

  it('holds a cap across processes, each task at most one slot', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `task-${i}`);
    const answers = await Promise.all(
      ids.map((id, i) =>
        (i % 2 ? other.health : health).admit('capped', id, 3, 10_000, { ticket: i, staleMs: 10_000 }),
      ),
    );
    const admitted = ids.filter((_, i) => answers[i] === 'admitted');
    expect(admitted).toHaveLength(3);
    expect(answers.filter((a) => a === 'capped')).toHaveLength(9);
    expect((await health.snapshot('capped')).inFlight).toBe(3);
    // Asking again with a slot held keeps it and takes no second one.
    expect(await health.admit('capped', admitted[0], 3, 10_000)).toBe('admitted');
    expect((await other.health.snapshot('capped')).inFlight).toBe(3);
    for (const id of admitted) await health.release('capped', id);
    for (const id of ids) await health.release('capped', id);
    expect((await health.snapshot('capped')).inFlight).toBe(0);
  });

  it('gives a freed slot to the first in line (priority, then age), and answers who that is', async () => {
    const line = (ticket: number) => ({ ticket, staleMs: 10_000 });
    expect(await health.admit('lined', 'holder', 1, 10_000, line(5))).toBe('admitted');
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('capped');
    expect(await other.health.admit('lined', 'old', 1, 10_000, line(10))).toBe('capped');
    // The call ends: its outcome is recorded and its slot freed in one step, which answers the first in line.
    expect(await health.record('lined', true, 50, 'holder')).toBe('old');
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('capped');
    expect(await other.health.admit('lined', 'old', 1, 10_000, line(10))).toBe('admitted');
    expect(await health.release('lined', 'old')).toBe('young');
    expect(await health.admit('lined', 'young', 1, 10_000, line(30))).toBe('admitted');
    expect(await health.release('lined', 'young')).toBeUndefined();
  });

  it('keeps the places of tasks put in line ahead of time, until they stop asking', async () => {
    await health.join('joined', ['part-0', 'part-1'], 1);
    await health.join('joined', ['part-0'], 99); // a place already held keeps its ticket
    expect(await health.admit('joined', 'later', 2, 10_000, { ticket: 20, staleMs: 300 })).toBe('capped');
    expect(await other.health.admit('joined', 'part-1', 2, 10_000, { ticket: 1, staleMs: 300 })).toBe('admitted');
    expect(await health.release('joined', 'nobody')).toBe('part-0');
    // part-0 never asks: after staleMs it leaves the line and 'later' gets the free slot.
    const answer = await waitUntil(
      'part-0 to leave the line',
      () => health.admit('joined', 'later', 2, 10_000, { ticket: 20, staleMs: 300 }),
      { timeoutMs: 5000, until: (a) => a === 'admitted' },
    );
    expect(answer).toBe('admitted');
    await health.release('joined', 'part-1');
    await health.release('joined', 'later');
  });

  it('frees the slot of a task whose lease lapsed (its worker died)', async () => {
    expect(await health.admit('leased', 'dead', 1, 200)).toBe('admitted');
    expect(await health.admit('leased', 'next', 1, 10_000, { ticket: 1, staleMs: 10_000 })).toBe('capped');
    const answer = await waitUntil(
      'the lease to lapse',
      () => other.health.admit('leased', 'next', 1, 10_000, { ticket: 1, staleMs: 10_000 }),
      { timeoutMs: 5000, until: (a) => a === 'admitted' },
    );
    expect(answer).toBe('admitted');
    expect((await health.snapshot('leased')).inFlight).toBe(1);
    await health.release('leased', 'next');
  });
});
