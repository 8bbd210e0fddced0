import { JwtService } from '@nestjs/jwt';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signToken } from '../src/auth/token';
import { TEST_JWT_SECRET, TestApp } from './support/test-app';

const BASE = '/api/v1/media';
const ROOT = join(__dirname, '..');

/** A token signed with the platform's secret, with exactly these claims (no `exp` unless given). */
function raw(claims: Record<string, unknown>): string {
  return new JwtService({ secret: TEST_JWT_SECRET }).sign(claims, { algorithm: 'HS256' });
}

/** The admin dashboard's form login with this token: its status. */
async function dashboardLogin(t: TestApp, token: string): Promise<number> {
  const res = await fetch(`${t.baseUrl}/admin/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
    redirect: 'manual',
  });
  await res.text();
  return res.status;
}

/** `npm run token -- …` on the TypeScript sources, with this environment: the token it prints. */
async function tokenScript(args: string[], env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), join(ROOT, 'scripts', 'token.ts'), ...args],
    { cwd: ROOT, env: { ...process.env, JWT_SECRET: TEST_JWT_SECRET, ...env } },
  );
  return stdout.trim();
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('tokens must expire', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a well-signed token without exp (401), on the API and at the dashboard login', async () => {
    for (const token of [raw({ sub: 'alice' }), raw({ sub: 'root', roles: ['admin'] })]) {
      const res = await t.request('GET', `${BASE}/tasks`, { token });
      expect(res.status).toBe(401);
      expect(res.body.message).toMatch(/exp/);
    }
    expect(await dashboardLogin(t, raw({ sub: 'root', roles: ['admin'] }))).toBe(401);
    // The same claims with an expiry are fine.
    const res = await t.request('GET', `${BASE}/tasks`, { token: raw({ sub: 'alice', exp: Date.now() / 1000 + 60 }) });
    expect(res.status).toBe(200);
  });

  it('has npm run token sign tokens that expire, and the platform takes them', async () => {
    const token = await tokenScript(['--sub', 'alice', '--ttl', '1h'], {});
    const claims = claimsOf(token);
    expect(claims).toMatchObject({ sub: 'alice', roles: [] });
    expect(claims.exp).toBe((claims.iat as number) + 3600);
    expect(claims).not.toHaveProperty('iss');
    expect((await t.request('GET', `${BASE}/tasks`, { token })).status).toBe(200);
  }, 30000);
});

describe('JWT_ISSUER and JWT_AUDIENCE', () => {
  const env = { JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'media-tasks' };
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env });
  });
  afterAll(async () => {
    await t.close();
  });

  const exp = () => Math.floor(Date.now() / 1000) + 600;

  it('refuse a token whose iss or aud is missing or another (401), and take one that matches', async () => {
    const refused = [
      raw({ sub: 'alice', exp: exp() }),
      raw({ sub: 'alice', exp: exp(), iss: env.JWT_ISSUER }),
      raw({ sub: 'alice', exp: exp(), aud: env.JWT_AUDIENCE }),
      raw({ sub: 'alice', exp: exp(), iss: 'https://evil.example.com', aud: env.JWT_AUDIENCE }),
      raw({ sub: 'alice', exp: exp(), iss: env.JWT_ISSUER, aud: 'another-service' }),
    ];
    for (const token of refused) {
      const res = await t.request('GET', `${BASE}/tasks`, { token });
      expect({ claims: claimsOf(token), status: res.status }).toEqual({ claims: claimsOf(token), status: 401 });
      expect(res.body.message).toMatch(/issuer|audience/);
    }
    expect(await dashboardLogin(t, raw({ sub: 'root', roles: ['admin'], exp: exp() }))).toBe(401);

    const good = signToken(TEST_JWT_SECRET, { sub: 'alice', issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE });
    expect((await t.request('GET', `${BASE}/tasks`, { token: good })).status).toBe(200);
    const admin = signToken(TEST_JWT_SECRET, {
      sub: 'root',
      admin: true,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    });
    expect(await dashboardLogin(t, admin)).toBe(303);
  });

  it('are set by npm run token, and on the stream tokens the platform makes', async () => {
    const token = await tokenScript(['--sub', 'alice'], env);
    expect(claimsOf(token)).toMatchObject({ iss: env.JWT_ISSUER, aud: env.JWT_AUDIENCE });
    const created = await t.request('POST', `${BASE}/subtitles/generate`, { token, body: { text: 'Hello there.' } });
    expect(created.status).toBe(202);
    await t.waitForTask(created.body.id, (x) => x.status === 'completed');
    const stream = await t.request('POST', `${BASE}/tasks/${created.body.id}/events/token`, { token });
    expect(stream.status).toBe(201);
    expect(claimsOf(stream.body.token)).toMatchObject({ iss: env.JWT_ISSUER, aud: env.JWT_AUDIENCE });
    const events = await fetch(`${t.baseUrl}${stream.body.url}`);
    expect(events.status).toBe(200);
    expect(await events.text()).toContain('event: task.completed');
  }, 30000);
});
