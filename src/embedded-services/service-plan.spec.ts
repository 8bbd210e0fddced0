import { serviceShortfall, shortfallParagraph } from './missing-services';
import { Probe } from './probes';
import { neededServices, planServices, resolveQueueBackend, ServiceDecision, ServiceName } from './service-plan';

const DEFAULTS = { databaseUrl: 'postgres://postgres@127.0.0.1:5432/media_tasks', redisUrl: 'redis://127.0.0.1:6379' };

async function plan(options: {
  mode: 'auto' | 'always' | 'never';
  urls?: Partial<typeof DEFAULTS>;
  probes: Record<ServiceName, Probe>;
  cannotStart?: Partial<Record<ServiceName, string>>;
}): Promise<{ actions: Record<string, string>; decisions: ServiceDecision[]; probed: string[] }> {
  const probed: string[] = [];
  const decisions = await planServices({
    mode: options.mode,
    needs: neededServices({ urls: { ...DEFAULTS, ...options.urls }, defaults: DEFAULTS }),
    probe: (need) => {
      probed.push(need.name);
      return Promise.resolve(options.probes[need.name]);
    },
    whyCannotStart: (name) => Promise.resolve(options.cannotStart?.[name]),
  });
  return { actions: Object.fromEntries(decisions.map((d) => [d.need.name, d.action])), decisions, probed };
}

const answers: Probe = { state: 'answers' };
const silent: Probe = { state: 'silent', reason: 'connect ECONNREFUSED' };
const rejects: Probe = { state: 'rejects', reason: 'password authentication failed for user "app"' };

describe('which services boot starts', () => {
  it('auto: uses what answers, starts what is silent at its default address', async () => {
    expect((await plan({ mode: 'auto', probes: { postgres: answers, redis: answers } })).actions).toEqual({
      postgres: 'use',
      redis: 'use',
    });
    expect((await plan({ mode: 'auto', probes: { postgres: silent, redis: answers } })).actions).toEqual({
      postgres: 'start',
      redis: 'use',
    });
  });

  it('auto: a URL of your own that does not answer is missing, never replaced', async () => {
    const { actions, decisions } = await plan({
      mode: 'auto',
      urls: { redisUrl: 'redis://cache.internal:6379' },
      probes: { postgres: answers, redis: silent },
    });
    expect(actions).toEqual({ postgres: 'use', redis: 'missing' });
    expect(decisions[1]).toMatchObject({ action: 'missing', probe: silent });
    expect(decisions[1]).not.toHaveProperty('cannotStart');
  });

  it('auto: something that answers but refuses the platform is missing (a wrong password is not hidden)', async () => {
    expect((await plan({ mode: 'auto', probes: { postgres: rejects, redis: answers } })).actions.postgres).toBe(
      'missing',
    );
  });

  it('auto: silent at the default and nothing to start it with is missing, with the reason', async () => {
    const { decisions } = await plan({
      mode: 'auto',
      probes: { postgres: silent, redis: silent },
      cannotStart: { redis: 'there is no redis-server on PATH' },
    });
    expect(decisions.map((d) => d.action)).toEqual(['start', 'missing']);
    expect(decisions[1]).toMatchObject({ cannotStart: 'there is no redis-server on PATH', probe: silent });
  });

  it('never (and production): only what answers', async () => {
    expect((await plan({ mode: 'never', probes: { postgres: silent, redis: answers } })).actions).toEqual({
      postgres: 'missing',
      redis: 'use',
    });
  });

  it('always: starts both without asking the configured addresses', async () => {
    const result = await plan({ mode: 'always', probes: { postgres: answers, redis: answers } });
    expect(result.actions).toEqual({ postgres: 'start', redis: 'start' });
    expect(result.probed).toEqual([]);
    const blocked = await plan({
      mode: 'always',
      probes: { postgres: answers, redis: answers },
      cannotStart: { postgres: 'the embedded PostgreSQL is not installed' },
    });
    expect(blocked.decisions[0]).toMatchObject({ action: 'missing', cannotStart: expect.any(String) });
    expect(blocked.decisions[0]).not.toHaveProperty('probe');
  });
});

describe('the paragraph naming what is missing', () => {
  it('names everything at once, in one line: the service, its address and variable, and how to get it', async () => {
    const { decisions } = await plan({
      mode: 'auto',
      urls: { databaseUrl: 'postgres://app:s3cret@db.internal:5433/media' },
      probes: { postgres: silent, redis: silent },
      cannotStart: { redis: 'there is no redis-server on PATH' },
    });
    const paragraph = shortfallParagraph(
      'The platform',
      decisions.flatMap((d) => (d.action === 'missing' ? [serviceShortfall(d)] : [])),
    );
    expect(paragraph).not.toContain('\n');
    expect(paragraph).not.toContain('s3cret');
    expect(paragraph).toBe(
      'The platform cannot start. ' +
        'PostgreSQL does not answer at db.internal:5433 (DATABASE_URL); install and start PostgreSQL with ' +
        '`sudo apt-get install -y postgresql` (Debian/Ubuntu), `brew install postgresql@18 && brew services start ' +
        'postgresql@18` (macOS) or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:18`, ' +
        'or set DATABASE_URL to yours. ' +
        'Redis does not answer at 127.0.0.1:6379 (REDIS_URL) and cannot be started here: there is no redis-server ' +
        'on PATH; install and start Redis with `sudo apt-get install -y redis-server` (Debian/Ubuntu), ' +
        '`brew install redis && brew services start redis` (macOS) or `docker run -d -p 6379:6379 redis:7`, ' +
        'or set REDIS_URL to yours.',
    );
  });

  it('says what a server that answers refused', async () => {
    const { decisions } = await plan({ mode: 'never', probes: { postgres: rejects, redis: answers } });
    const missing = decisions[0] as Extract<ServiceDecision, { action: 'missing' }>;
    expect(serviceShortfall(missing).problem).toBe(
      'PostgreSQL at 127.0.0.1:5432 (DATABASE_URL) refuses the connection: password authentication failed for user "app"',
    );
  });
});

describe('where the queues live (QUEUE_BACKEND)', () => {
  const resolve = (setting: 'auto' | 'redis' | 'postgres', redisUrlSet: boolean, probe: Probe) => {
    const probed: string[] = [];
    const backend = resolveQueueBackend({
      setting,
      redisUrlSet,
      redisUrl: DEFAULTS.redisUrl,
      probeRedis: (url) => {
        probed.push(url);
        return Promise.resolve(probe);
      },
    });
    return backend.then((b) => ({ backend: b, probed }));
  };

  it('auto: Redis when one answers at the default address, Postgres when nothing does', async () => {
    expect(await resolve('auto', false, answers)).toEqual({ backend: 'redis', probed: [DEFAULTS.redisUrl] });
    expect(await resolve('auto', false, silent)).toEqual({ backend: 'postgres', probed: [DEFAULTS.redisUrl] });
  });

  it('auto: Redis whenever REDIS_URL is set, without asking (boot says so if it does not answer)', async () => {
    expect(await resolve('auto', true, silent)).toEqual({ backend: 'redis', probed: [] });
  });

  it('redis and postgres are taken as they are', async () => {
    expect(await resolve('postgres', true, answers)).toEqual({ backend: 'postgres', probed: [] });
    expect(await resolve('redis', false, silent)).toEqual({ backend: 'redis', probed: [] });
  });

  it('with the queues on Postgres, Redis is neither needed nor started', async () => {
    const needs = neededServices({ urls: DEFAULTS, defaults: DEFAULTS, queueBackend: 'postgres' });
    expect(needs.map((n) => n.name)).toEqual(['postgres']);
    const onRedis = neededServices({ urls: DEFAULTS, defaults: DEFAULTS, queueBackend: 'redis' });
    expect(onRedis.map((n) => n.name)).toEqual(['postgres', 'redis']);
  });
});
