import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrowserContext, chromium } from 'playwright-core';
import { TestApp } from './support/test-app';

const CHROMIUM = '/usr/bin/chromium';

describe('queue dashboard at /admin/queues', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await TestApp.start({ env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    await app.close();
  });

  /** The form POST a browser makes; answers the status and the session cookie (name=value), if any. */
  async function login(token: string): Promise<{ status: number; cookie?: string; setCookie: string | null }> {
    const res = await fetch(`${app.baseUrl}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
      redirect: 'manual',
    });
    await res.text();
    const setCookie = res.headers.get('set-cookie');
    return { status: res.status, cookie: setCookie?.split(';')[0], setCookie };
  }

  it('sends a browser without a session to the login form, and refuses API calls with 401', async () => {
    for (const path of ['/admin/queues', '/admin/queues/queue/tasks', '/admin/queues/api/queues']) {
      const res = await fetch(`${app.baseUrl}${path}`, { redirect: 'manual' });
      expect({ path, status: res.status, location: res.headers.get('location') }).toEqual({
        path,
        status: 302,
        location: '/admin/login',
      });
    }
    // A bearer token is not a session: the dashboard only takes the cookie.
    const bearer = await fetch(`${app.baseUrl}/admin/queues`, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${app.token('root', { admin: true })}` },
    });
    expect(bearer.status).toBe(302);
    const forged = await fetch(`${app.baseUrl}/admin/queues/api/queues`, {
      redirect: 'manual',
      headers: { cookie: `mt_admin_session=${app.token('root', { admin: true })}` },
    });
    expect(forged.status).toBe(302);
    const write = await fetch(`${app.baseUrl}/admin/queues/api/queues/tasks/pause`, { method: 'PUT' });
    expect(write.status).toBe(401);

    const form = await fetch(`${app.baseUrl}/admin/login`);
    expect(form.status).toBe(200);
    expect(form.headers.get('content-type')).toContain('text/html');
    expect(await form.text()).toContain('name="token"');
  });

  it('refuses a bad token and a token without the admin role', async () => {
    const bad = await login('not-a-jwt');
    expect(bad.status).toBe(401);
    expect(bad.setCookie).toBeNull();
    const expired = await login(app.token('root', { admin: true, ttl: '-1s' }));
    expect(expired.status).toBe(401);
    const user = await login(app.token('alice'));
    expect(user.status).toBe(403);
    expect(user.setCookie).toBeNull();
  });

  it('logs an admin in with a signed HttpOnly cookie (not the JWT) and shows the three queues in Chromium', async () => {
    const token = app.token('root', { admin: true });
    const session = await login(token);
    expect(session.status).toBe(303);
    expect(session.setCookie).toMatch(/HttpOnly/);
    expect(session.setCookie).toMatch(/SameSite=Strict/);
    expect(session.setCookie).toMatch(/Max-Age=3600/);
    expect(session.setCookie).not.toMatch(/Secure/); // plain http here; Secure once the request came over https
    expect(session.cookie).toMatch(/^mt_admin_session=v1\./);
    expect(session.cookie).not.toContain(token);

    const behindTls = await fetch(`${app.baseUrl}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({ token }).toString(),
      redirect: 'manual',
    });
    expect(behindTls.headers.get('set-cookie')).toMatch(/; Secure/);

    const api = await fetch(`${app.baseUrl}/admin/queues/api/queues`, { headers: { cookie: session.cookie! } });
    expect(api.status).toBe(200);

    const profile = await mkdtemp(join(tmpdir(), 'dashboard-chromium-'));
    let context: BrowserContext | undefined;
    try {
      // A fresh profile each run (playwright passes it as --user-data-dir).
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        timeout: 10000,
      });
      const [name, value] = session.cookie!.split('=');
      await context.addCookies([{ name, value, url: `${app.baseUrl}/admin`, httpOnly: true, sameSite: 'Strict' }]);
      const page = await context.newPage();
      const response = await page.goto(`${app.baseUrl}/admin/queues`, { timeout: 10000 });
      expect(response?.status()).toBe(200);
      for (const queue of ['tasks', 'maintenance', 'webhooks']) {
        await page.getByText(queue, { exact: true }).first().waitFor({ timeout: 10000 });
      }
      expect(page.url()).toBe(`${app.baseUrl}/admin/queues`);
      if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT });
    } finally {
      await context?.close();
      await rm(profile, { recursive: true, force: true });
    }
  }, 20000);
});
