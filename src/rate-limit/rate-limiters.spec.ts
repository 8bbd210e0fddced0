import { RateLimiterRes } from 'rate-limiter-flexible';
import { openStateBackend, STATE_BACKENDS, StateBackendClients } from '../../test/state-backends';
import { PostgresRateLimiters, RateLimiters, RedisRateLimiters } from './rate-limiters';

describe.each(STATE_BACKENDS)('rate limits counted on %s', (backend) => {
  let clients: StateBackendClients;
  let limiters: RateLimiters;

  beforeAll(async () => {
    clients = await openStateBackend(backend);
    limiters =
      backend === 'postgres' ? new PostgresRateLimiters(clients.dataSource) : new RedisRateLimiters(clients.redis);
  });
  afterAll(() => clients?.close());

  it('counts a key across limiters (processes), refuses past the limit and keeps counters apart', async () => {
    const here = limiters.perMinute('user', 3);
    const there = limiters.perMinute('user', 3);
    expect((await here.consume('alice')).remainingPoints).toBe(2);
    expect((await there.consume('alice')).remainingPoints).toBe(1);
    const last = await here.consume('alice');
    expect(last.remainingPoints).toBe(0);
    expect(last.msBeforeNext).toBeGreaterThan(50_000);
    const refused = await there.consume('alice').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RateLimiterRes);
    expect((refused as RateLimiterRes).msBeforeNext).toBeLessThanOrEqual(60_000);
    // Another user, and another counter for the same name, start afresh.
    expect((await here.consume('bob')).remainingPoints).toBe(2);
    expect((await limiters.perMinute('unauthenticated', 3).consume('alice')).remainingPoints).toBe(2);
  });
});
