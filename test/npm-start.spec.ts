import { readFileSync } from 'node:fs';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { PlatformProcess } from './support/platform-process';
import { deleteRedisKeys, freePort } from './support/test-app';

/** The command lines of a process's children (Linux's /proc). */
function childrenOf(pid: number): { pid: number; command: string }[] {
  const pids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return pids.map((child) => ({
    pid: Number(child),
    command: readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '),
  }));
}

/**
 * `npm start` as a supervisor runs it (systemd, a process manager, a container whose command it is): stopped with a
 * SIGTERM to npm. The platform must be npm's own child, so the signal reaches its shutdown; a shell or `nest start`
 * in between dies of it and leaves the platform running, serving and holding its jobs.
 */
describe('npm start', () => {
  const redisPrefix = `npmstart${process.pid}`;
  let database: { name: string; url: string };
  let npm: PlatformProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await npm?.kill();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('runs the built platform as npm’s own child, without source maps, and a SIGTERM to npm shuts it down', async () => {
    const port = await freePort();
    const health = `http://127.0.0.1:${port}/health/live`;
    npm = PlatformProcess.npmStart({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      EMBEDDED_SERVICES: 'never',
    });
    // The build comes first (nest build), then the platform.
    await npm.waitForHttp(health, 150_000);
    const children = childrenOf(npm.child.pid!);
    expect(children.map((c) => c.command)).toEqual(['node dist/src/main.js']);

    const stoppedInMs = await npm.stopWith('SIGTERM', 30_000);
    const { code } = await npm.exited;
    expect({
      stopped: stoppedInMs !== undefined,
      code,
      shutdown: npm.output.includes('SIGTERM: shutting down'),
    }).toEqual({ stopped: true, code: 0, shutdown: true });
    // Nothing of it is left: the process is gone and the port is free.
    expect(() => readFileSync(`/proc/${children[0].pid}/cmdline`)).toThrow();
    expect(
      await fetch(health).then(
        () => 'answered',
        () => 'refused',
      ),
    ).toBe('refused');
  }, 240_000);
});
