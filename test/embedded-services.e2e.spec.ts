import { ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { signToken } from '../src/auth/token';
import { probePostgres, probeRedis } from '../src/embedded-services/probes';
import { freePort } from '../src/embedded-services/processes';
import { TEST_JWT_SECRET } from './support/test-app';
import { databaseUrl, REDIS_URL } from './support/databases';
import { mediaServer } from './support/media-server';
import { waitUntil } from './support/wait';

const ROOT = join(__dirname, '..');
const MAIN = join(ROOT, 'src', 'main.ts');

interface Platform {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** `atMs`: from the moment the code was loaded (transpiled), as `npm start` runs it once the build is done. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

/**
 * The platform as `npm start` runs it (the TypeScript sources, transpiled on require), in `cwd`, so its ./data is
 * that folder's. `defaults` stands in for the schema's default URLs, to play a machine where nothing answers there.
 */
function startPlatform(cwd: string, env: Record<string, string | undefined>, defaults?: object): Platform {
  const script = [
    '-e',
    `const main = require(${JSON.stringify(MAIN)}); process.stdout.write('loaded\\n'); ` +
      `main.run(${defaults ? `{ defaults: ${JSON.stringify(defaults)} }` : ''})`,
  ];
  const childEnv: Record<string, string | undefined> = { ...process.env };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'EMBEDDED_SERVICES', 'TEST_PG_URL', 'TEST_REDIS_URL']) {
    delete childEnv[name];
  }
  let loadedAt = Number.NaN;
  const child = spawn(process.execPath, ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), ...script], {
    cwd,
    env: {
      ...childEnv,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: '0',
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'warn',
      // The services are under test here, not the providers: no emulators on the default ports unless asked.
      PROVIDERS_MODE: 'live',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (Number.isNaN(loadedAt) && out.startsWith('loaded\n')) loadedAt = Date.now();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() - loadedAt })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** The start-up line, once the platform prints it (or what it said if it exited first). */
async function readyLine(platform: Platform, timeoutMs = 120_000): Promise<string> {
  let gone = false;
  void platform.exited.then(() => (gone = true));
  // Answers '' when the platform exited without the line.
  const line = await waitUntil(
    'the start-up line',
    () => platform.stdout().match(/^ready on .*$/m)?.[0] ?? (gone ? '' : undefined),
    { timeoutMs, intervalMs: 100, until: (found) => found !== undefined },
  ).catch(() => '');
  if (line) return line;
  throw new Error(`no start-up line; stdout: ${platform.stdout()} stderr: ${platform.stderr()}`);
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const token = signToken(TEST_JWT_SECRET, { sub: 'alice' });
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

/** As an orchestrator does before sending traffic: /health/ready answers 200 once both connections are up. */
async function untilReady(base: string): Promise<void> {
  const status = async () => (await fetch(`${base}/health/ready`).catch(() => undefined))?.status;
  await waitUntil(`${base}/health/ready to answer 200`, status, {
    timeoutMs: 15_000,
    intervalMs: 100,
    until: (s) => s === 200,
  });
}

describe('npm start with EMBEDDED_SERVICES=always: a Postgres and a Redis of its own under ./data', () => {
  let cwd: string;
  let platform: Platform | undefined;

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'media-embedded-'));
    // As root, Postgres runs as the postgres user, which must be able to reach its folder.
    await chmod(cwd, 0o755);
  });
  afterAll(async () => {
    if (platform && platform.child.exitCode === null) {
      platform.child.kill('SIGTERM');
      await platform.exited;
    }
    await rm(cwd, { recursive: true, force: true });
  });

  it('starts both, completes a task, stops both on SIGTERM, and finds the task after a restart', async () => {
    platform = startPlatform(cwd, { EMBEDDED_SERVICES: 'always' });
    const line = await readyLine(platform);
    expect(line).toMatch(
      /started PostgreSQL 18\.\d+ \(data in \.\/data\/postgres, 127\.0\.0\.1:\d+; EMBEDDED_SERVICES=always\)/,
    );
    expect(line).toMatch(
      /started Redis [\d.]+ \(data in \.\/data\/redis, 127\.0\.0\.1:\d+; EMBEDDED_SERVICES=always\)/,
    );
    expect(line).toContain('npm run token -- --sub alice');
    const base = /ready on (http:\/\/[^:]+:\d+)/.exec(line)![1];
    const [pgPort, redisPort] = [...line.matchAll(/127\.0\.0\.1:(\d+);/g)].map((m) => Number(m[1]));

    await untilReady(base);
    const submitted = await api(base, 'POST', '/api/v1/media/subtitles/generate', { text: 'Kept across restarts.' });
    expect(submitted.status).toBe(202);
    const id = submitted.body.id as string;
    const task = await waitUntil(
      'the task to complete',
      async () => (await api(base, 'GET', `/api/v1/media/tasks/${id}`)).body,
      { timeoutMs: 20_000, intervalMs: 100, until: (x) => x.status === 'completed' },
    );
    expect(task.status).toBe('completed');

    platform.child.kill('SIGTERM');
    const exit = await platform.exited;
    expect(exit.code).toBe(0); // a clean shutdown
    // Both servers are gone with it, and Postgres shut down cleanly (its lock file removed).
    expect((await probePostgres(`postgres://postgres@127.0.0.1:${pgPort}/postgres`, 1000)).state).toBe('silent');
    expect((await probeRedis(`redis://127.0.0.1:${redisPort}`, 1000)).state).toBe('silent');
    expect(existsSync(join(cwd, 'data', 'postgres', 'postmaster.pid'))).toBe(false);
    expect((await stat(join(cwd, 'data', 'postgres', 'PG_VERSION'))).isFile()).toBe(true);

    platform = startPlatform(cwd, { EMBEDDED_SERVICES: 'always' });
    const again = await readyLine(platform);
    expect(again).toContain('started PostgreSQL');
    const base2 = /ready on (http:\/\/[^:]+:\d+)/.exec(again)![1];
    await untilReady(base2);
    const found = await api(base2, 'GET', `/api/v1/media/tasks/${id}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ id, status: 'completed' });
    expect(found.body.output.content).toContain('Kept across restarts.');
  }, 240_000);
});

/**
 * PATH as it is, but for `command`: each folder that holds it is replaced by a folder (under `shadowRoot`) of links to
 * everything else it holds, so the machine's other commands (useradd, which an embedded Postgres needs as root) stay.
 */
function pathWithout(command: string, shadowRoot: string): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir, i) => {
      if (!existsSync(join(dir, command))) return dir;
      const shadow = join(shadowRoot, String(i));
      mkdirSync(shadow, { recursive: true });
      for (const name of readdirSync(dir)) if (name !== command) symlinkSync(join(dir, name), join(shadow, name));
      return shadow;
    })
    .join(delimiter);
}

describe('npm start on a machine with Node alone: the embedded Postgres holds the queues too, no Redis anywhere', () => {
  let cwd: string;
  let platform: Platform | undefined;
  let media: { server: Server; url: string };
  const mediaDir = mkdtempSync(join(tmpdir(), 'media-first-run-'));

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'media-node-alone-'));
    await chmod(cwd, 0o755);
    media = await mediaServer(mediaDir);
  });
  afterAll(async () => {
    if (platform && platform.child.exitCode === null) {
      platform.child.kill('SIGTERM');
      await platform.exited;
    }
    media.server.close();
    await rm(cwd, { recursive: true, force: true });
    await rm(mediaDir, { recursive: true, force: true });
  });

  it('comes up with nothing at the default addresses and no redis-server on PATH, and completes a task of every type in the sandbox', async () => {
    const [pg, redis] = [await freePort(), await freePort()];
    const nothing = {
      databaseUrl: `postgres://postgres@127.0.0.1:${pg}/media_tasks`,
      redisUrl: `redis://127.0.0.1:${redis}`,
    };
    const path = pathWithout('redis-server', join(cwd, 'bin'));
    // QUEUE_BACKEND and REDIS_URL left alone, as on a new machine; the sandbox answers for the providers, and the
    // media the tasks read are on loopback.
    platform = startPlatform(
      cwd,
      {
        DATABASE_URL: nothing.databaseUrl,
        PATH: path,
        PROVIDERS_MODE: 'sandbox',
        PROVIDER_POLL_SCALE: '0.02',
        WEBHOOK_ALLOW_PRIVATE: 'true',
      },
      nothing,
    );
    const line = await readyLine(platform);
    expect(line).toMatch(/started PostgreSQL 18\.\d+ \(data in \.\/data\/postgres, 127\.0\.0\.1:\d+/);
    expect(line).toContain('queues on PostgreSQL');
    expect(line).not.toMatch(/started Redis/);
    expect(existsSync(join(cwd, 'data', 'redis'))).toBe(false);
    const base = /ready on (http:\/\/[^:]+:\d+)/.exec(line)![1];
    await untilReady(base);

    const submissions: [string, Record<string, unknown>][] = [
      ['images/generate', { prompt: 'a lighthouse at dawn' }],
      ['videos/generate', { prompt: 'waves', image_url: `${media.url}/frame.png`, duration: 5 }],
      ['audio/transcribe', { audio_url: `${media.url}/talk.mp3` }],
      ['subtitles/generate', { text: 'Hello from a machine with Node alone.' }],
      ['videos/img2vid', { images: [{ id: 'a', image_url: `${media.url}/frame.png`, duracao: 1 }] }],
      ['videos/caption', { url_video: `${media.url}/v.mp4`, url_srt: `${media.url}/v.srt` }],
      ['videos/addaudio', { url_video: `${media.url}/v.mp4`, url_audio: `${media.url}/talk.mp3` }],
    ];
    const ids: string[] = [];
    for (const [route, body] of submissions) {
      const res = await api(base, 'POST', `/api/v1/media/${route}`, body);
      expect([route, res.status, res.body.message]).toEqual([route, 202, undefined]);
      ids.push(res.body.id as string);
    }
    const tasks = await Promise.all(
      ids.map((id) =>
        waitUntil(`task ${id} to end`, async () => (await api(base, 'GET', `/api/v1/media/tasks/${id}`)).body, {
          timeoutMs: 90_000,
          intervalMs: 250,
          until: (x) => ['completed', 'failed', 'cancelled'].includes(x.status),
        }),
      ),
    );
    expect(tasks.map((x) => [x.type, x.status, x.error?.message])).toEqual(
      [
        'image_generation',
        'video_generation',
        'audio_transcription',
        'subtitle_generation',
        'img2vid',
        'caption',
        'addaudio',
      ].map((type) => [type, 'completed', undefined]),
    );

    platform.child.kill('SIGTERM');
    expect((await platform.exited).code).toBe(0);
  }, 240_000);
});

describe('npm start when a service is missing', () => {
  let cwd: string;
  let closed: { databaseUrl: string; redisUrl: string };

  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'media-missing-'));
    // Ports nothing listens on: the defaults of a machine with neither Postgres nor Redis.
    const [pg, redis] = [await freePort(), await freePort()];
    closed = { databaseUrl: `postgres://postgres@127.0.0.1:${pg}/media_tasks`, redisUrl: `redis://127.0.0.1:${redis}` };
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  function expectOneParagraph(text: string): void {
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).not.toMatch(/\n\s+at /);
  }

  it('with nothing at the defaults and no redis-server on PATH: one paragraph, exit 1 within 5 s, nothing started', async () => {
    const path = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((dir) => !existsSync(join(dir, 'redis-server')))
      .join(delimiter);
    const platform = startPlatform(
      cwd,
      { DATABASE_URL: closed.databaseUrl, REDIS_URL: closed.redisUrl, PATH: path },
      closed,
    );
    const exit = await platform.exited;
    expect(exit.code).toBe(1);
    expect(exit.atMs).toBeLessThan(5000);
    const paragraph = platform.stderr();
    expectOneParagraph(paragraph);
    expect(paragraph).toContain('The platform cannot start.');
    expect(paragraph).toContain(
      `Redis does not answer at ${new URL(closed.redisUrl).host} (REDIS_URL) and cannot be started here: ` +
        'there is no redis-server on PATH',
    );
    expect(paragraph).toContain('`sudo apt-get install -y redis-server` (Debian/Ubuntu)');
    expect(paragraph).toContain('`brew install redis && brew services start redis` (macOS)');
    expect(paragraph).toContain('`docker run -d -p 6379:6379 redis:7`');
    expect(paragraph).toContain('or set REDIS_URL to yours');
    // Postgres could have been started, so it is not named, and nothing was started before the refusal.
    expect(paragraph).not.toContain('PostgreSQL');
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  }, 30_000);

  it('in production, a dependency that does not answer gets the same words, with no fallback', async () => {
    const platform = startPlatform(cwd, {
      NODE_ENV: 'production',
      JWT_SECRET: 'x'.repeat(40),
      DATABASE_URL: closed.databaseUrl.replace('postgres@', 'postgres:hunter2@'),
      REDIS_URL: REDIS_URL,
    });
    const exit = await platform.exited;
    expect(exit.code).toBe(1);
    expect(exit.atMs).toBeLessThan(5000);
    const paragraph = platform.stderr();
    expectOneParagraph(paragraph);
    expect(paragraph).toContain(`PostgreSQL does not answer at ${new URL(closed.databaseUrl).host} (DATABASE_URL)`);
    expect(paragraph).toContain('`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:18`');
    expect(paragraph).toContain('or set DATABASE_URL to yours');
    expect(paragraph).not.toContain('hunter2');
    expect(paragraph).not.toContain('Redis'); // the machine's answers
  }, 30_000);
});

describe('service probes', () => {
  it('tell an address where nothing listens from a server that refuses the platform', async () => {
    const port = await freePort();
    expect((await probeRedis(`redis://127.0.0.1:${port}`)).state).toBe('silent');
    expect((await probePostgres(`postgres://postgres@127.0.0.1:${port}/x`)).state).toBe('silent');
    expect((await probeRedis(REDIS_URL)).state).toBe('answers');
    // A database that does not exist yet still answers (boot creates it); a role that does not exist is refused.
    expect((await probePostgres(databaseUrl('media_no_such_database'))).state).toBe('answers');
    const stranger = new URL(databaseUrl('postgres'));
    stranger.username = 'media_no_such_role';
    expect(await probePostgres(stranger.toString())).toMatchObject({ state: 'rejects' });
  });
});
