import { randomUUID } from 'node:crypto';
import { openStateBackend, STATE_BACKENDS, StateBackendClients } from '../../test/state-backends';
import type { AdminSession } from './admin-session';
import {
  AdminSessionRevocations,
  PostgresAdminSessionRevocations,
  RedisAdminSessionRevocations,
} from './admin-session-revocations';

describe.each(STATE_BACKENDS)('dashboard sign-outs kept in %s', (backend) => {
  let clients: StateBackendClients;
  const make = (): AdminSessionRevocations =>
    backend === 'postgres'
      ? new PostgresAdminSessionRevocations(clients.sql)
      : new RedisAdminSessionRevocations(clients.redis);
  const session = (ttlSeconds: number): AdminSession => ({
    id: randomUUID(),
    subject: 'admin',
    expiresAt: Math.floor(Date.now() / 1000) + ttlSeconds,
  });

  beforeAll(async () => {
    clients = await openStateBackend(backend);
  });
  afterAll(() => clients?.close());

  it('signs a session out for every process, and only that session', async () => {
    const [here, there] = [make(), make()];
    const signedOut = session(600);
    const other = session(600);
    expect(await there.isRevoked(signedOut)).toBe(false);
    await here.revoke(signedOut);
    await here.revoke(signedOut); // twice is harmless
    expect(await there.isRevoked(signedOut)).toBe(true);
    expect(await there.isRevoked(other)).toBe(false);
  });

  it('forgets a sign-out once its session has expired anyway', async () => {
    const revocations = make();
    // Ends at the second after next (in 1 to 2 s: expiries are whole seconds), so it is still live when checked first.
    const ended = session(2);
    await revocations.revoke(ended);
    expect(await revocations.isRevoked(ended)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, ended.expiresAt * 1000 - Date.now() + 200));
    expect(await revocations.isRevoked(ended)).toBe(false);
  });
});
