import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from './app-config';
import { ConfigError, PROVIDER_KEY_VARIABLES, validateEnv } from './env.schema';

function problems(env: Record<string, string>): string[] {
  try {
    validateEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('environment validation', () => {
  it('boots on a fresh machine with no variables at all, as .env.example says it does', () => {
    const env = validateEnv({});
    const documented = new Map(
      readFileSync(join(__dirname, '..', '..', '.env.example'), 'utf8')
        .split('\n')
        .filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    for (const name of ['PORT', 'APP_ROLE', 'DATABASE_URL', 'JWT_SECRET'] as const) {
      expect([name, String(env[name])]).toEqual([name, documented.get(name)]);
    }
    // The published secret: the process knows it runs on it (and so listens on loopback only).
    expect(AppConfig.fromEnv({}).usesDevJwtSecret).toBe(true);
    expect(AppConfig.fromEnv({ JWT_SECRET: 'x'.repeat(40) }).usesDevJwtSecret).toBe(false);
  });

  it('parses numbers and lists', () => {
    const config = AppConfig.fromEnv({
      PORT: '8080',
      TASK_RETRY_DELAYS: '10,20',
      TASK_TIMEOUTS: 'img2vid=60,caption=5',
    });
    expect(config.port).toBe(8080);
    expect(config.taskRetryDelaysMs).toEqual([10, 20]);
    expect(config.taskTimeoutOverrides).toEqual({ img2vid: 60, caption: 5 });
  });

  it('names every bad variable at once', () => {
    const found = problems({ PORT: 'eighty', APP_ROLE: 'both', REDIS_URL: 'http://x', TASK_RETRY_DELAYS: '1,,2' });
    expect(found.map((p) => p.split(':')[0]).sort()).toEqual(['APP_ROLE', 'PORT', 'REDIS_URL', 'TASK_RETRY_DELAYS']);
    expect(found.find((p) => p.startsWith('APP_ROLE'))).toContain('"both"');
  });

  it('takes an OTLP endpoint as an http(s) URL and names it when it is not one', () => {
    expect(problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'media-api' })).toEqual(
      [],
    );
    const [found] = problems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' });
    expect(found).toMatch(/^OTEL_EXPORTER_OTLP_ENDPOINT: .*http\(s\) URL/);
  });

  it('takes REDIS_URL as a cluster seed node with REDIS_CLUSTER=true, which has no database number', () => {
    expect(AppConfig.fromEnv({}).redisCluster).toBe(false);
    expect(AppConfig.fromEnv({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://node-1:7000/0' }).redisCluster).toBe(true);
    const [problem] = problems({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://:secret@node-1:7000/2' });
    expect(problem).toBe(
      'REDIS_URL: REDIS_URL cannot name a database number when REDIS_CLUSTER=true (a cluster has only db 0)',
    );
    expect(problems({ REDIS_CLUSTER: 'yes' })[0]).toMatch(/^REDIS_CLUSTER: /);
  });

  it('refuses production without a real JWT secret, and never echoes the secret', () => {
    expect(problems({ NODE_ENV: 'production' }).join()).toContain('JWT_SECRET');
    const short = problems({ NODE_ENV: 'production', JWT_SECRET: 'short-secret' });
    expect(short.join()).toContain('at least 32 characters');
    expect(short.join()).not.toContain('short-secret');
    expect(problems({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) })).toEqual([]);
  });

  it('starts services of its own only outside production (EMBEDDED_SERVICES)', () => {
    expect(AppConfig.fromEnv({}).embeddedServices).toBe('auto');
    expect(AppConfig.fromEnv({ EMBEDDED_SERVICES: 'always' }).embeddedServices).toBe('always');
    expect(AppConfig.fromEnv({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) }).embeddedServices).toBe('never');
    expect(problems({ EMBEDDED_SERVICES: 'sometimes' }).join()).toContain('EMBEDDED_SERVICES');
    expect(problems({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), EMBEDDED_SERVICES: 'always' })).toEqual([
      'EMBEDDED_SERVICES: EMBEDDED_SERVICES=always is refused when NODE_ENV=production (got "always")',
    ]);
  });

  it('refuses a WEBHOOK_SECRET that could not sign, naming the variable and never echoing it', () => {
    for (const secret of ['whsec_not-base64!!', `whsec_${Buffer.alloc(16, 7).toString('base64')}`, 'short']) {
      const found = problems({ WEBHOOK_SECRET: secret });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(/^WEBHOOK_SECRET: /);
      expect(found[0]).not.toContain(secret.replace('whsec_', ''));
    }
    expect(problems({ WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}` })).toEqual([]);
    expect(problems({ WEBHOOK_SECRET: 'a-plain-secret-of-sixteen+' })).toEqual([]);
  });

  it('reads the media port list and the trusted provider output origins', () => {
    expect(AppConfig.fromEnv({}).mediaAllowedPorts).toEqual([]);
    expect(AppConfig.fromEnv({ MEDIA_ALLOWED_PORTS: '80, 443,8080' }).mediaAllowedPorts).toEqual([80, 443, 8080]);
    for (const bad of ['0', '65536', '80,,443', 'http', '443;80']) {
      expect(problems({ MEDIA_ALLOWED_PORTS: bad }).join()).toContain('MEDIA_ALLOWED_PORTS');
    }
    const config = AppConfig.fromEnv({
      RUNPOD_BASE_URL: 'http://127.0.0.1:4013/',
      PROVIDER_OUTPUT_ORIGINS: 'http://minio.internal:9000, https://files.example.com/',
    });
    expect(config.providerOutputOrigins).toEqual([
      'https://api.openai.com/v1',
      'https://api.stability.ai',
      'https://api.dev.runwayml.com',
      'http://127.0.0.1:4013',
      'http://minio.internal:9000',
      'https://files.example.com/',
    ]);
    expect(problems({ PROVIDER_OUTPUT_ORIGINS: 'minio:9000' }).join()).toContain('PROVIDER_OUTPUT_ORIGINS');
    expect(problems({ PROVIDER_OUTPUT_ORIGINS: 'http://a/b?c' }).join()).toContain('PROVIDER_OUTPUT_ORIGINS');
  });

  it('runs the providers in the sandbox by default while no provider key is set, outside production only', () => {
    const resolved = (env: Record<string, string>) => {
      const config = AppConfig.fromEnv(env);
      return [config.providersMode, config.providersModeDefaulted];
    };
    const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) };
    expect(resolved({})).toEqual(['sandbox', true]);
    expect(resolved({ NODE_ENV: 'test', PROVIDERS_MODE: 'auto' })).toEqual(['sandbox', true]);
    // Any one provider's key, and an empty one counts as unset (as .env.example leaves them).
    for (const name of PROVIDER_KEY_VARIABLES) {
      expect([name, ...resolved({ [name]: 'k-123' })]).toEqual([name, 'live', false]);
      expect([name, ...resolved({ [name]: '' })]).toEqual([name, 'sandbox', true]);
    }
    expect(resolved(production)).toEqual(['live', false]);
    // Set, the mode is what it says, in production too.
    expect(resolved({ PROVIDERS_MODE: 'live' })).toEqual(['live', false]);
    expect(resolved({ PROVIDERS_MODE: 'sandbox', OPENAI_API_KEY: 'k-123' })).toEqual(['sandbox', false]);
    expect(resolved({ ...production, PROVIDERS_MODE: 'sandbox' })).toEqual(['sandbox', false]);
    expect(problems({ PROVIDERS_MODE: 'mock' })).toEqual([
      'PROVIDERS_MODE: PROVIDERS_MODE must be one of the following values: auto, live, sandbox (got "mock")',
    ]);
  });

  it('counts every provider key variable the schema has (and no other secret) as a provider key', () => {
    const schema = readFileSync(join(__dirname, 'env.schema.ts'), 'utf8');
    const keys = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*_KEY)\??[:= ]/gm)].map((m) => m[1]);
    // Object storage's secret is no provider's.
    expect(keys.filter((name) => name !== 'S3_SECRET_ACCESS_KEY').sort()).toEqual([...PROVIDER_KEY_VARIABLES].sort());
  });

  it('derives the roles', () => {
    expect(AppConfig.fromEnv({ APP_ROLE: 'api' })).toMatchObject({ runsApi: true, runsWorkers: false });
    expect(AppConfig.fromEnv({ APP_ROLE: 'worker' })).toMatchObject({ runsApi: false, runsWorkers: true });
    expect(AppConfig.fromEnv({ APP_ROLE: 'all' })).toMatchObject({ runsApi: true, runsWorkers: true });
  });
});
