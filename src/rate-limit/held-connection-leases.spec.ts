import { randomUUID } from 'node:crypto';
import { BackendFixture, BACKENDS, BackendName } from '../../test/support/backend-fixture';
import type { HeldConnectionLeases } from './held-connection-leases';
import { PostgresHeldConnectionLeases } from './postgres-held-connection-leases';
import { RedisHeldConnectionLeases } from './redis-held-connection-leases';

describe.each(BACKENDS)('held connection leases on %s', (backend: BackendName) => {
  let fixture: BackendFixture;
  let one: HeldConnectionLeases;
  let two: HeldConnectionLeases;
  /** Leases of a process that died a while ago: lapsed, never given back. */
  let plantLapsed: (userId: string, count: number) => Promise<void>;
  /** Forgets every lease of the user, as a restarted store would. */
  let forget: (userId: string) => Promise<void>;

  beforeAll(async () => {
    fixture = await BackendFixture.start();
    const [a, b] = [await fixture.process(), await fixture.process()];
    if (backend === 'postgres') {
      one = new PostgresHeldConnectionLeases(a.sql);
      two = new PostgresHeldConnectionLeases(b.sql);
      plantLapsed = async (userId, count) => {
        await a.sql.rows(
          `INSERT INTO held_connections (lease_id, user_id, expires_at)
           SELECT gen_random_uuid(), $1, now() - interval '1 second' FROM generate_series(1, $2)`,
          [userId, count],
        );
      };
      forget = async (userId) => void (await a.sql.rows(`DELETE FROM held_connections WHERE user_id = $1`, [userId]));
    } else {
      one = new RedisHeldConnectionLeases(a.redis);
      two = new RedisHeldConnectionLeases(b.redis);
      plantLapsed = async (userId, count) => {
        for (let i = 0; i < count; i += 1)
          await a.redis.client.zadd(a.redis.key('held', userId), Date.now() - 1000, randomUUID());
      };
      forget = async (userId) => void (await a.redis.client.del(a.redis.key('held', userId)));
    }
  });
  afterAll(async () => fixture?.close());

  it('give a user at most the limit across processes, and say how many are held when refusing', async () => {
    const user = `u-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).take(user, randomUUID(), 3)),
    );
    expect(results.filter((r) => r === -1)).toHaveLength(3);
    expect(results.filter((r) => r !== -1)).toEqual(Array(7).fill(3));
  });

  it('free a place when a lease is given back, and count only their own user', async () => {
    const user = `u-${randomUUID()}`;
    const leases = [randomUUID(), randomUUID()];
    for (const lease of leases) expect(await one.take(user, lease, 2)).toBe(-1);
    expect(await two.take(user, randomUUID(), 2)).toBe(2);
    expect(await two.take(`other-${user}`, randomUUID(), 2)).toBe(-1);
    await one.release(user, leases[0]);
    expect(await two.take(user, randomUUID(), 2)).toBe(-1);
  });

  it('do not count lapsed leases', async () => {
    const user = `u-${randomUUID()}`;
    await plantLapsed(user, 2);
    expect(await one.take(user, randomUUID(), 2)).toBe(-1);
    expect(await two.take(user, randomUUID(), 2)).toBe(-1);
    expect(await one.take(user, randomUUID(), 2)).toBe(2);
  });

  it('put back, on renewal, the leases the store lost', async () => {
    const user = `u-${randomUUID()}`;
    const lease = randomUUID();
    expect(await one.take(user, lease, 1)).toBe(-1);
    await forget(user);
    expect(await two.take(user, randomUUID(), 1)).toBe(-1);
    await forget(user);
    await one.renew(new Map([[lease, user]]));
    expect(await two.take(user, randomUUID(), 1)).toBe(1);
  });
});
