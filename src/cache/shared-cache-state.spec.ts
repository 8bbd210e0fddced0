import { connectedRedis, openStateBackend, STATE_BACKENDS, StateBackendClients } from '../../test/state-backends';
import { waitUntil } from '../../test/support/wait';
import { AppConfig } from '../config/app-config';
import { PostgresNotifications } from '../database/postgres-notifications';
import { SqlClient } from '../database/sql-client';
import { RedisService } from '../queue/redis.service';
import { PostgresCacheState } from './postgres-cache-state';
import { RedisCacheState } from './redis-cache-state';
import { SharedCacheState } from './shared-cache-state';

describe.each(STATE_BACKENDS)("the result cache's shared state on %s", (backend) => {
  let clients: StateBackendClients;
  let state: SharedCacheState;
  /** A second process of the same deployment: its own connections, the same database and prefix. */
  let other: { state: SharedCacheState; close: () => Promise<void> };
  const purgesHeard = { here: 0, there: 0 };
  let closeListeners: () => Promise<unknown> = () => Promise.resolve();

  beforeAll(async () => {
    clients = await openStateBackend(backend);
    const config = AppConfig.fromEnv(clients.env);
    const sql = new SqlClient(config, clients.dataSource);
    const redis = await connectedRedis(config);
    // Each process listens on a connection of its own.
    const listeners: PostgresNotifications[] = [];
    const make = (s: SqlClient, r: RedisService) => {
      if (backend === 'redis') return new RedisCacheState(r);
      const notifications = new PostgresNotifications(config, s);
      listeners.push(notifications);
      return new PostgresCacheState(s, notifications);
    };
    state = make(clients.sql, clients.redis);
    const otherState = make(sql, redis);
    closeListeners = () => Promise.all(listeners.map((l) => l.onApplicationShutdown()));
    state.open(() => purgesHeard.here++);
    otherState.open(() => purgesHeard.there++);
    other = {
      state: otherState,
      close: async () => {
        await otherState.close();
        await redis.onApplicationShutdown();
        await sql.onApplicationShutdown();
      },
    };
  });
  afterAll(async () => {
    await state?.close();
    await other?.close();
    await closeListeners();
    await clients?.close();
  });

  it('lets the first of identical tasks call the provider and answers the others when it is done', async () => {
    expect(await state.claimFirstCall('k1', 'first', 10_000)).toBe(true);
    expect(await other.state.claimFirstCall('k1', 'second', 10_000)).toBe(false);
    expect(await state.claimFirstCall('k1', 'third', 10_000)).toBe(false);
    expect(await state.claimFirstCall('k1', 'first', 10_000)).toBe(true); // asking again keeps the claim
    expect(await other.state.releaseFirstCall('k1', 'second')).toEqual([]); // not its claim to give up
    expect((await state.releaseFirstCall('k1', 'first')).sort()).toEqual(['second', 'third']);
    expect(await state.releaseFirstCall('k1', 'first')).toEqual([]);
    // The call is free again: the next to ask takes it.
    expect(await other.state.claimFirstCall('k1', 'third', 10_000)).toBe(true);
    expect(await other.state.releaseFirstCall('k1', 'third')).toEqual([]);
  });

  it('gives exactly one of many tasks asking together the call', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `task-${i}`);
    const answers = await Promise.all(
      ids.map((id, i) => (i % 2 ? other.state : state).claimFirstCall('k2', id, 10_000)),
    );
    expect(answers.filter(Boolean)).toHaveLength(1);
    const first = ids[answers.indexOf(true)];
    expect((await state.releaseFirstCall('k2', first)).sort()).toEqual(ids.filter((id) => id !== first).sort());
  });

  it('lets a claim whose task died lapse, and another task take it over', async () => {
    expect(await state.claimFirstCall('k3', 'dead', 1000)).toBe(true);
    expect(await state.claimFirstCall('k3', 'next', 1000)).toBe(false);
    await waitUntil('the claim to lapse', () => other.state.claimFirstCall('k3', 'next', 10_000), {
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await state.releaseFirstCall('k3', 'dead')).toEqual([]);
    await state.releaseFirstCall('k3', 'next');
    expect(await state.claimFirstCall('k3', 'later', 1000)).toBe(true);
  });

  it("sums every process's counters, and a purge empties them and is heard by every process", async () => {
    await state.addCounts([
      ['memory_hits', 2],
      ['disk_misses', 1],
    ]);
    await other.state.addCounts([['memory_hits', 3]]);
    expect(await state.readCounts()).toEqual({ memory_hits: 5, disk_misses: 1 });
    const before = { ...purgesHeard };
    // The listening connections may still be connecting: purge until both have heard one.
    await waitUntil(
      'both processes to hear a purge',
      async () => {
        await other.state.purge();
        return purgesHeard.here > before.here && purgesHeard.there > before.there;
      },
      { timeoutMs: 5000, intervalMs: 200 },
    );
    expect(await state.readCounts()).toEqual({});
  });

  it(backend === 'redis' ? 'shares entries between processes' : 'has no shared entry layer', async () => {
    await state.setEntry('k4', '{"output":{},"provider":"p"}');
    const seen = await other.state.getEntry('k4');
    if (backend === 'redis') {
      expect(seen).toBe('{"output":{},"provider":"p"}');
      expect(await other.state.entryCount()).toBe(1);
    } else {
      expect(seen).toBeNull();
      expect(await other.state.entryCount()).toBe(0);
    }
    expect(state.hasSharedLayer).toBe(backend === 'redis');
  });
});
