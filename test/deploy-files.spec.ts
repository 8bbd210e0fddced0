import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { AppConfig } from '../src/config/app-config';

/**
 * docker-compose.yml and the Dockerfile, read as an operator's `docker compose up` would use them: pinned images, the
 * bucket made before the platform starts, a health check and a restart policy on every long-running service, a stop
 * grace period above SHUTDOWN_TIMEOUT_MS, no variable left undefined, and an image that runs as `node` with a
 * writable /app/data, a HEALTHCHECK, the token script and no benchmarks. Where Docker Compose is installed,
 * `docker compose config` must accept the file too; where it is not (this suite's machines have a docker client
 * without the Compose plugin), that one command is left out and every other check still runs.
 */
const ROOT = join(__dirname, '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const TS_REGISTER = join(ROOT, 'test', 'support', 'ts-register.js');
const JWT_SECRET = 'compose-check-secret-0123456789abcdef';

interface Service {
  image?: string;
  build?: unknown;
  command?: unknown;
  entrypoint?: unknown;
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  restart?: string;
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
}

const composeText = readFileSync(COMPOSE_FILE, 'utf8');
// Compose reads merge keys (`<<: *anchor`), a YAML 1.1 feature.
const composeDoc = parseDocument(composeText, { merge: true });
const services = (composeDoc.toJS() as { services: Record<string, Service> }).services;
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');

/** Services something waits for to exit 0: they run once and are done. */
const oneShot = new Set(
  Object.values(services).flatMap((s) =>
    Object.entries(s.depends_on ?? {})
      .filter(([, d]) => d.condition === 'service_completed_successfully')
      .map(([name]) => name),
  ),
);
const longRunning = Object.keys(services).filter((name) => !oneShot.has(name));
const appServices = Object.keys(services).filter((name) => services[name].build !== undefined);

/** Every string in the file, wherever it sits (interpolation applies to all of them). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

const VARIABLE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Compose's interpolation of one value: `$$` is a literal `$`; `${X:-d}` defaults; `${X:?msg}` demands X. */
function interpolate(value: string, env: Record<string, string>): string {
  return value
    .split('$$')
    .map((part) =>
      part.replace(VARIABLE, (_all, braced: string, op: string | undefined, arg: string, bare: string) => {
        const name = braced ?? bare;
        const set = env[name];
        if (op === ':-') return set ? set : arg;
        if (op === '-') return set ?? arg;
        if (op?.endsWith('?') && (set === undefined || (op === ':?' && set === ''))) throw new Error(`${name}: ${arg}`);
        return set ?? '';
      }),
    )
    .join('$');
}

/** The environment an app service's process gets, with only the given variables set in the operator's shell. */
function appEnv(name: string, shell: Record<string, string>): Record<string, string> {
  const env = services[name].environment ?? {};
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, interpolate(String(value ?? ''), shell)]));
}

/** `docker compose` answers here: the client and its Compose plugin are installed (no daemon needed for `config`). */
function composeInstalled(): boolean {
  return spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
}

/** `5s`, `1m30s`, `35s` → milliseconds. */
function durationMs(value: string): number {
  let ms = 0;
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return ms;
}

/** `repo/name:tag@digest` → its tag ('' when it has none). */
function tagOf(image: string): string {
  const withoutDigest = image.split('@')[0];
  const lastPart = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1);
  return lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : '';
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));
const stages = instructions.map((line, i) => ({ line, i })).filter(({ line }) => /^FROM\s/i.test(line));
const runtimeStage = instructions.slice(stages[stages.length - 1].i);

describe('docker-compose.yml', () => {
  it('is a valid Compose file: the YAML parses cleanly, and `docker compose config` accepts it where installed', () => {
    expect(composeDoc.errors.map(String)).toEqual([]);
    expect(composeDoc.warnings.map(String)).toEqual([]);
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['postgres', 'redis', 'api', 'worker']));
    // Without the Compose plugin the parse above and the checks below are what this machine can do.
    if (!composeInstalled()) return;

    const config = (env: Record<string, string>) =>
      spawnSync('docker', ['compose', '--env-file', '/dev/null', '-f', COMPOSE_FILE, 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      });
    const ok = config({ JWT_SECRET });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    // The one variable without a default stops `up` with its message.
    const missing = config({});
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/JWT_SECRET/);
  });

  it('pins every image to a version: a tag with a version number, never latest or none', () => {
    const images = Object.entries(services)
      .filter(([, s]) => s.image !== undefined)
      .map(([name, s]) => ({ name, image: s.image as string, tag: tagOf(s.image as string) }));
    expect(images.length).toBeGreaterThanOrEqual(3);
    for (const { name, image, tag } of images) {
      expect({ name, image, pinned: /^v?\d+\.\d+/.test(tag) }).toEqual({ name, image, pinned: true });
    }
    // Services without an image are built from the Dockerfile, whose base image is checked below.
    for (const name of appServices) expect(services[name].image).toBeUndefined();
    // MinIO's Docker Hub repositories are gone: a fresh machine could not pull them.
    expect(images.filter(({ image }) => /^(docker\.io\/)?minio\//.test(image))).toEqual([]);
  });

  it('has a health check and a restart policy on every long-running service; one-shot setup neither restarts nor waits', () => {
    expect(longRunning).toEqual(expect.arrayContaining(['postgres', 'redis', 'api', 'worker']));
    for (const name of longRunning) {
      const s = services[name];
      expect({ name, healthcheck: !!s.healthcheck?.test && !s.healthcheck.disable }).toEqual({
        name,
        healthcheck: true,
      });
      expect({ name, restart: s.restart }).toEqual({
        name,
        restart: expect.stringMatching(/^(unless-stopped|always)$/),
      });
    }
    expect(oneShot.size).toBeGreaterThan(0);
    for (const name of oneShot)
      expect({ name, restart: services[name].restart ?? 'no' }).toEqual({ name, restart: 'no' });
  });

  it('starts the API and the worker after Postgres and Redis are healthy and the bucket exists', () => {
    expect(appServices.sort()).toEqual(['api', 'worker']);
    const setup = [...oneShot];
    for (const name of appServices) {
      const deps = services[name].depends_on ?? {};
      expect({ name, postgres: deps.postgres, redis: deps.redis }).toEqual({
        name,
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      for (const one of setup) expect(deps[one]).toEqual({ condition: 'service_completed_successfully' });
    }
    // The setup waits for the store to be healthy, and makes the bucket the platform is given.
    const bucketSetup = setup.find((name) => strings(services[name].command).join('\n').includes('PUT'));
    expect(bucketSetup).toBeDefined();
    const store = Object.entries(services[bucketSetup!].depends_on ?? {});
    expect(store).toHaveLength(1);
    expect(store[0][1]).toEqual({ condition: 'service_healthy' });
    expect(appEnv(bucketSetup!, {}).S3_BUCKET).toBe(appEnv('api', { JWT_SECRET }).S3_BUCKET);
  });

  it('runs the API and worker roles, each checked on /health/ready by the health-check script the image builds', () => {
    expect(appEnv('api', { JWT_SECRET }).APP_ROLE).toBe('api');
    expect(appEnv('worker', { JWT_SECRET }).APP_ROLE).toBe('worker');
    for (const name of appServices) {
      expect(services[name].healthcheck?.test).toEqual(['CMD', 'node', 'dist/scripts/health-check.js']);
    }
    expect(existsSync(join(ROOT, 'scripts', 'health-check.ts'))).toBe(true);
  });

  it('gives the platform longer to stop than SHUTDOWN_TIMEOUT_MS before Docker kills it', () => {
    for (const name of appServices) {
      const timeout = Number(appEnv(name, { JWT_SECRET }).SHUTDOWN_TIMEOUT_MS);
      expect(timeout).toBeGreaterThan(0);
      const grace = durationMs(services[name].stop_grace_period ?? '10s');
      // Exiting takes a moment after the timeout fires; SIGKILL must not come before.
      expect(grace).toBeGreaterThanOrEqual(timeout + 2000);
      expect(grace).toBeLessThanOrEqual(timeout + 30_000);
    }
  });

  it('defines or defaults every variable it reads: only JWT_SECRET must be set, and its absence says so', () => {
    const required = new Set<string>();
    const bare: string[] = [];
    for (const value of strings(composeDoc.toJS())) {
      for (const m of value.split('$$').join('').matchAll(VARIABLE)) {
        const [all, braced, op] = m;
        if (!braced || !op) bare.push(all);
        else if (op.endsWith('?')) required.add(braced);
      }
    }
    expect(bare).toEqual([]);
    expect([...required]).toEqual(['JWT_SECRET']);
    expect(() => appEnv('api', {})).toThrow(/JWT_SECRET: set JWT_SECRET/);
  });

  it('gives each role an environment the platform accepts in production, with S3 or local storage', () => {
    for (const name of appServices) {
      for (const storage of ['s3', 'local']) {
        const env: Record<string, string> = {
          ...appEnv(name, { JWT_SECRET, OUTPUT_STORAGE: storage }),
          NODE_ENV: 'production',
        };
        const config = AppConfig.fromEnv(env);
        expect({ name, role: config.role, storage: env.OUTPUT_STORAGE }).toEqual({ name, role: name, storage });
      }
    }
  });

  it('signs presigned links for the address the store is published at, not the one inside the network', () => {
    const env = appEnv('api', { JWT_SECRET });
    const inside = new URL(env.S3_ENDPOINT);
    const outside = new URL(env.S3_PUBLIC_ENDPOINT);
    expect(services[inside.hostname]).toBeDefined();
    expect(outside.hostname).toBe('localhost');
    const published = (services[inside.hostname].ports ?? []).map((p) => interpolate(p, {}));
    expect(published).toContain(`127.0.0.1:${outside.port}:${inside.port}`);
  });

  it('shares one outputs volume between the API and the worker, where local storage writes in the image', () => {
    expect(runtimeStage).toContain('WORKDIR /app');
    for (const name of appServices) {
      expect(services[name].volumes).toContain('outputs:/app/data/outputs');
      const env = { ...appEnv(name, { JWT_SECRET, OUTPUT_STORAGE: 'local' }), NODE_ENV: 'production' };
      const config = AppConfig.fromEnv(env);
      expect(join('/app', config.storage.localDir)).toBe('/app/data/outputs');
      // The disk cache has no volume: it lives in the container, under the /app/data the image gives to node.
      expect(join('/app', config.cache.dir)).toMatch(/^\/app\/data\//);
    }
  });
});

describe('Dockerfile', () => {
  it('builds on one pinned Node image that engines allows', () => {
    const bases = stages.map(({ line }) => line.split(/\s+/)[1]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    expect(new Set(bases).size).toBe(1);
    const tag = tagOf(bases[0]);
    expect(bases[0]).toMatch(/^node:/);
    expect(tag).toMatch(/^\d+\.\d+\.\d+-/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const [, minMajor, minMinor] = /^>=(\d+)\.(\d+)/.exec(pkg.engines.node) ?? [];
    const [major, minor] = tag.split(/[.-]/).map(Number);
    expect(major > Number(minMajor) || (major === Number(minMajor) && minor >= Number(minMinor))).toBe(true);
  });

  it('runs as node, with /app/data made and owned by node before it switches', () => {
    const user = runtimeStage.findIndex((line) => /^USER\s+node$/.test(line));
    expect(user).toBeGreaterThan(0);
    const makeData = runtimeStage.findIndex(
      (line) => /^RUN\s.*mkdir -p .*\/app\/data\b/.test(line) && /chown -R node:node \/app\/data\b/.test(line),
    );
    expect(makeData).toBeGreaterThan(0);
    expect(makeData).toBeLessThan(user);
  });

  it('has a HEALTHCHECK run by node (the slim image has no curl)', () => {
    const check = runtimeStage.filter((line) => /^HEALTHCHECK\s/.test(line));
    expect(check).toHaveLength(1);
    expect(check[0]).toMatch(/CMD \["node", "dist\/scripts\/health-check\.js"\]$/);
  });

  it('carries the token script, built from scripts/ into dist/scripts by the build', () => {
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(build.include).toContain('scripts/**/*.ts');
    expect(existsSync(join(ROOT, 'scripts', 'token.ts'))).toBe(true);
    expect(instructions).toContain('COPY scripts scripts');
    expect(runtimeStage).toContain('COPY --from=build /app/dist dist');
    // The wrapper `npm run token` runs, so both spellings work in the image.
    expect(runtimeStage).toContain('COPY --from=build /app/scripts/token.js scripts/token.js');
    expect(runtimeStage[runtimeStage.length - 1]).toBe('CMD ["node", "dist/src/main.js"]');
  });

  it('leaves the benchmarks out: never copied, and kept out of the build context', () => {
    const copies = instructions.filter((line) => /^(COPY|ADD)\s/i.test(line));
    expect(copies.filter((line) => /\bbench\b/.test(line))).toEqual([]);
    // A `COPY . .` would bring whatever the context holds: bench/ must not be in it.
    expect(dockerignore.split('\n').map((line) => line.trim())).toContain('bench');
  });
});

describe('scripts/health-check.ts (the HEALTHCHECK)', () => {
  let server: Server;
  let status = 200;
  let port: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/health/ready' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const check = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, ['-r', TS_REGISTER, join(ROOT, 'scripts', 'health-check.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
    }).then(
      () => 0,
      (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr }),
    );

  it('exits 0 while /health/ready answers 200 on PORT, and 1 on a 503 or when nothing listens', async () => {
    status = 200;
    expect(await check({ PORT: String(port) })).toBe(0);
    expect(await check({ PORT: String(port), HOST: '0.0.0.0' })).toBe(0);
    status = 503;
    expect(await check({ PORT: String(port) })).toEqual({ code: 1, stderr: expect.stringMatching(/answered 503/) });
    server.close();
    expect(await check({ PORT: String(port) })).toEqual({ code: 1, stderr: expect.stringMatching(/health\/ready/) });
  }, 20000);
});

describe('scripts/token.ts', () => {
  it('says which setting is wrong, without a stack, when the configuration is refused', async () => {
    const run = await promisify(execFile)(
      process.execPath,
      ['-r', TS_REGISTER, join(ROOT, 'scripts', 'token.ts'), '--sub', 'alice'],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', JWT_SECRET: 'short' } },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/JWT_SECRET/);
    expect(run.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/);
  }, 20000);
});
