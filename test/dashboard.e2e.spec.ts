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

  it('refuses changes asked from another origin (403), whatever the session, and takes same-origin ones', async () => {
    const { cookie } = await login(app.token('root', { admin: true }));
    const put = (path: string, headers: Record<string, string>) =>
      fetch(`${app.baseUrl}/admin/queues/api/queues/maintenance/${path}`, {
        method: 'PUT',
        headers: { cookie: cookie!, ...headers },
        redirect: 'manual',
      });
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example.com' },
      { origin: 'null' },
      { origin: app.baseUrl.replace('127.0.0.1', 'localhost') },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: app.baseUrl, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of crossSite) {
      const res = await put('pause', headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 403 });
      expect(await res.json()).toMatchObject({ code: 'forbidden' });
    }
    const queues = async () =>
      (await (await fetch(`${app.baseUrl}/admin/queues/api/queues`, { headers: { cookie: cookie! } })).json()) as {
        queues: { name: string; isPaused: boolean }[];
      };
    expect((await queues()).queues.find((q) => q.name === 'maintenance')?.isPaused).toBe(false);

    // The dashboard's own page asks from its origin; programs without a browser send no Origin at all.
    expect((await put('pause', { origin: app.baseUrl, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await queues()).queues.find((q) => q.name === 'maintenance')?.isPaused).toBe(true);
    expect((await put('resume', {})).status).toBe(200);

    // Signing in or out from another site (login CSRF, forced logout) is refused as well.
    const token = app.token('root', { admin: true });
    const forged = await fetch(`${app.baseUrl}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example.com' },
      body: new URLSearchParams({ token }).toString(),
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
    const logout = await fetch(`${app.baseUrl}/admin/logout`, {
      method: 'POST',
      headers: { cookie: cookie!, 'sec-fetch-site': 'cross-site' },
      redirect: 'manual',
    });
    expect(logout.status).toBe(403);
    expect((await fetch(`${app.baseUrl}/admin/queues/api/queues`, { headers: { cookie: cookie! } })).status).toBe(200);
  });

  it('ends a session on the server at logout: the old cookie opens nothing afterwards', async () => {
    const { cookie } = await login(app.token('root', { admin: true }));
    const other = await login(app.token('ops', { admin: true }));
    const api = (c: string) =>
      fetch(`${app.baseUrl}/admin/queues/api/queues`, { headers: { cookie: c }, redirect: 'manual' });
    expect((await api(cookie!)).status).toBe(200);

    const out = await fetch(`${app.baseUrl}/admin/logout`, {
      method: 'POST',
      headers: { cookie: cookie!, origin: app.baseUrl },
      redirect: 'manual',
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/admin/login');
    expect(out.headers.get('set-cookie')).toMatch(/^mt_admin_session=;.*Max-Age=0/);
    // A copy of the cookie kept by the browser, a proxy or a thief is worth nothing now…
    const replayed = await api(cookie!);
    expect(replayed.status).toBe(302);
    expect(replayed.headers.get('location')).toBe('/admin/login');
    const write = await fetch(`${app.baseUrl}/admin/queues/api/queues/maintenance/pause`, {
      method: 'PUT',
      headers: { cookie: cookie! },
    });
    expect(write.status).toBe(401);
    // …while other sessions go on.
    expect((await api(other.cookie!)).status).toBe(200);
  });

  it('logs an admin in with a signed HttpOnly cookie (not the JWT) and shows the three queues in Chromium', async () => {
    const token = app.token('root', { admin: true });
    const session = await login(token);
    expect(session.status).toBe(303);
    expect(session.setCookie).toMatch(/HttpOnly/);
    expect(session.setCookie).toMatch(/SameSite=Strict/);
    expect(session.setCookie).toMatch(/Max-Age=3600/);
    expect(session.setCookie).not.toMatch(/Secure/); // plain http here; Secure once the request came over https
    expect(session.cookie).toMatch(/^mt_admin_session=v2\./);
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
      // Signed in through the form, as an admin would: the browser's own POST passes the origin check.
      const page = await context.newPage();
      await page.goto(`${app.baseUrl}/admin/login`, { timeout: 10000 });
      await page.locator('#token').fill(token);
      const [response] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/queues', { timeout: 10000 }),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      expect(response.status()).toBe(200);
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
