import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { deleteRedisKeys, freePort, TEST_JWT_SECRET } from './support/test-app';
import { waitUntil } from './support/wait';

const ROOT = join(__dirname, '..');

/** The pids of a process's children, and each one's command line (Linux's /proc). */
function childrenOf(pid: number): { pid: number; command: string }[] {
  const pids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return pids.map((child) => ({
    pid: Number(child),
    command: readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '),
  }));
}

const answers = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (res) => res.ok,
    () => false,
  );

/**
 * `npm start` as a supervisor runs it (systemd, a process manager, a container whose command it is): stopped with a
 * SIGTERM to npm. The platform must be npm's own child, so the signal reaches its shutdown; a shell or `nest start`
 * in between dies of it and leaves the platform running, serving and holding its jobs.
 */
describe('npm start', () => {
  const redisPrefix = `npmstart${process.pid}`;
  let database: { name: string; url: string };
  let npm: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    // Its whole process group: whatever it started is gone too, even when the test failed with it still running.
    try {
      if (npm?.pid) process.kill(-npm.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  it('runs the built platform as npm’s own child, without source maps, and a SIGTERM to npm shuts it down', async () => {
    const port = await freePort();
    const npmStarted = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        REDIS_URL,
        REDIS_PREFIX: redisPrefix,
        QUEUE_BACKEND: TEST_QUEUE_BACKEND,
        EMBEDDED_SERVICES: 'never',
        JWT_SECRET: TEST_JWT_SECRET,
        PROVIDERS_MODE: 'sandbox',
        SANDBOX_PORT: '0',
        LOG_LEVEL: 'warn',
        STORAGE_DIR: join(tmpdir(), `media-test-npm-start-${process.pid}`),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own, for the clean-up above.
      detached: true,
    });
    npm = npmStarted;
    npmStarted.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    npmStarted.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => npmStarted.once('exit', (code) => resolve(code)));

    // The build comes first (nest build), then the platform.
    await waitUntil('npm start to serve', () => answers(`http://127.0.0.1:${port}/health/live`), {
      timeoutMs: 150_000,
      intervalMs: 250,
    }).catch((err: Error) => {
      throw new Error(`${err.message}:\n${output}`);
    });
    const children = childrenOf(npmStarted.pid!);
    expect(children.map((c) => c.command)).toEqual(['node dist/src/main.js']);

    npmStarted.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<'running'>((r) => (timer = setTimeout(r, 30_000, 'running'))),
    ]);
    clearTimeout(timer);
    expect({ code, shutdown: output.includes('SIGTERM: shutting down') }).toEqual({ code: 0, shutdown: true });
    // Nothing of it is left: the process is gone and the port is free.
    expect(() => readFileSync(`/proc/${children[0].pid}/cmdline`)).toThrow();
    expect(await answers(`http://127.0.0.1:${port}/health/live`)).toBe(false);
  }, 240_000);
});
