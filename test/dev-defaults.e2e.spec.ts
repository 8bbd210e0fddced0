import { ChildProcess, spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../src/auth/token';
import { createServer, Server } from 'node:http';
import { DEV_JWT_SECRET, PROVIDER_KEY_VARIABLES } from '../src/config/env.schema';
import { createTestDatabase, dropTestDatabase, REDIS_URL } from './support/databases';
import { deleteRedisKeys, freePort, TEST_JWT_SECRET } from './support/test-app';
import { waitUntil } from './support/wait';

const ROOT = join(__dirname, '..');
/** SANDBOX_PORT's default: the emulators listen on it and the six ports after it. */
const SANDBOX_DEFAULT_PORT = 4010;

/** An address of this machine that is not loopback: what another host on the network would connect to. */
function networkAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal);
  if (!found) throw new Error('this test needs a non-loopback IPv4 interface');
  return found.address;
}

/** `npm start` on the TypeScript sources, its standard output collected. */
function start(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), join(ROOT, 'src', 'main.ts')],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  return { child, output: () => out };
}

async function status(url: string): Promise<number | string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? (err as Error).name;
  }
}

async function waitUntilServing(url: string, child: ChildProcess): Promise<void> {
  const answer = async () => {
    if (child.exitCode !== null) throw new Error(`the platform exited with ${child.exitCode}`);
    return status(url);
  };
  await waitUntil(`${url} to answer 200`, answer, { timeoutMs: 60_000, intervalMs: 200, until: (s) => s === 200 });
}

describe('the development defaults on a network', () => {
  let database: { name: string; url: string };
  const redisPrefix = `devdef${process.pid}`;
  let running: ChildProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    if (running && running.exitCode === null) {
      const exited = new Promise((resolve) => running!.once('exit', resolve));
      running.kill('SIGTERM');
      await exited;
    }
  });
  afterAll(async () => {
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  function env(port: number, extra: Record<string, string> = {}): Record<string, string> {
    return {
      NODE_ENV: 'development',
      APP_ROLE: 'api',
      HOST: '0.0.0.0',
      PORT: String(port),
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      LOG_LEVEL: 'silent',
      JWT_SECRET: '',
      // The listening address is under test here; the providers' default has its own test below.
      PROVIDERS_MODE: 'live',
      ...extra,
    };
  }

  it('serves on loopback only while JWT_SECRET is the published default, and says so in one line', async () => {
    const port = await freePort();
    const { child, output } = start(env(port));
    running = child;
    await waitUntilServing(`http://127.0.0.1:${port}/health/live`, child);
    // Nobody on the network can reach it…
    expect(await status(`http://${networkAddress()}:${port}/health/live`)).toBe('ECONNREFUSED');
    const notice = output()
      .split('\n')
      .filter((line) => line.includes('JWT_SECRET'));
    expect(notice).toHaveLength(1);
    expect(notice[0]).toMatch(/development default.*127\.0\.0\.1.*HOST=0\.0\.0\.0/);
    expect(notice[0]).not.toContain(DEV_JWT_SECRET);
    // …while a token from `npm run token` (the same default secret) works on this machine.
    const token = signToken(DEV_JWT_SECRET, { sub: 'alice' });
    const tasks = await fetch(`http://127.0.0.1:${port}/api/v1/media/tasks`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(tasks.status).toBe(200);
  }, 90_000);

  it('serves on HOST once JWT_SECRET is set', async () => {
    const port = await freePort();
    const { child, output } = start(env(port, { JWT_SECRET: TEST_JWT_SECRET }));
    running = child;
    await waitUntilServing(`http://127.0.0.1:${port}/health/live`, child);
    expect(await status(`http://${networkAddress()}:${port}/health/live`)).toBe(200);
    expect(output()).not.toContain('JWT_SECRET');
  }, 90_000);

  it('runs the providers in the sandbox while no provider key is set, and says so and how to leave it', async () => {
    const port = await freePort();
    const noKeys = Object.fromEntries(PROVIDER_KEY_VARIABLES.map((name) => [name, '']));
    // An emulator's default port held by another program must not stop the start (when it is free to hold here).
    const stranger = await holdPort(SANDBOX_DEFAULT_PORT + 6);
    try {
      const { child, output } = start(
        env(port, { ...noKeys, PROVIDERS_MODE: '', SANDBOX_PORT: '', HOST: '127.0.0.1', JWT_SECRET: TEST_JWT_SECRET }),
      );
      running = child;
      await waitUntilServing(`http://127.0.0.1:${port}/health/live`, child);
      expect(output()).toMatch(
        /^ready on .*; providers: sandbox \(no provider key set; set one or PROVIDERS_MODE=live for real providers\)\. /m,
      );
      if (stranger) expect(output()).toMatch(/^sandbox: .*\(gemini on \d+: another program holds their ports\)/m);
      // The line tells a newcomer what to do next, and the console it names is there.
      expect(output()).toContain(
        `Next: npm run token -- --sub alice, and sign in with it at http://127.0.0.1:${port}/console`,
      );
      const page = await fetch(`http://127.0.0.1:${port}/console/`);
      expect([page.status, (await page.text()).includes('<div id="app">')]).toEqual([200, true]);
      // What a client (the web console) asks to tell the sandbox is on.
      const token = signToken(TEST_JWT_SECRET, { sub: 'alice' });
      const samples = await fetch(`http://127.0.0.1:${port}/api/v1/sandbox/samples`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect([samples.status, await samples.json()]).toEqual([
        200,
        { kinds: ['image', 'video', 'audio', 'subtitles'] },
      ]);
    } finally {
      stranger?.close();
    }
  }, 90_000);

  it('runs the real providers once a provider key is set, and has no sandbox routes', async () => {
    const port = await freePort();
    const { child, output } = start(
      env(port, { PROVIDERS_MODE: '', FAL_KEY: 'key-id:key-secret', HOST: '127.0.0.1', JWT_SECRET: TEST_JWT_SECRET }),
    );
    running = child;
    await waitUntilServing(`http://127.0.0.1:${port}/health/live`, child);
    expect(output()).toMatch(/^ready on .*; providers: live\. /m);
    expect(output()).not.toMatch(/^sandbox:/m);
    const token = signToken(TEST_JWT_SECRET, { sub: 'alice' });
    const samples = await fetch(`http://127.0.0.1:${port}/api/v1/sandbox/samples`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(samples.status).toBe(404);
  }, 90_000);
});

/** Listens on `port` as another program would (answering, but not as an emulator); undefined when it is taken. */
function holdPort(port: number): Promise<Server | undefined> {
  const server = createServer((_req, res) => res.end('not an emulator'));
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
