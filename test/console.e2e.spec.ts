import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BrowserContext, chromium, Page } from 'playwright-core';
import { findConsoleBuild } from '../src/console/web-console';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const CHROMIUM = '/usr/bin/chromium';
/** `UPDATE_SCREENSHOTS=1 npx jest test/console.e2e.spec.ts --selectProjects default` refreshes the README's pictures. */
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS ? join(__dirname, '..', 'docs', 'console') : undefined;
const STEP_MS = 15_000;
/** Run in the page: the form controls that have no name a screen reader could read (no label, aria-label or text). */
const UNNAMED_CONTROLS = `[...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden' && !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))`;

/**
 * The web console in a real browser, against a real platform in sandbox mode: what a user does with it, from sign-in
 * to seeing outputs rendered, cancelling, and replaying a dead webhook.
 */
describe('web console at /console', () => {
  let app: TestApp;
  let context: BrowserContext;
  let profile: string;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    if (!findConsoleBuild()) throw new Error('the console is not built: npm run build:console (npm test does it)');
    receiver = await WebhookReceiver.start();
    app = await TestApp.start({
      sandbox: true,
      env: { WEBHOOK_MAX_RETRIES: '1', WEBHOOK_RETRY_DELAYS: '50', WEBHOOK_TIMEOUT_MS: '2000' },
    });
    profile = await mkdtemp(join(tmpdir(), 'console-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      timeout: STEP_MS,
    });
    context.setDefaultTimeout(STEP_MS);
    if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await context?.close();
    await app?.close();
    await receiver?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  /** A new tab signed in as `token` through the sign-in form; page errors fail the test. */
  async function signedIn(token: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const page = await context.newPage();
    await page.setViewportSize(viewport);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('close', () => expect(errors).toEqual([]));
    await page.goto(`${app.baseUrl}/console/`);
    await page.getByLabel('Token or API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
    // The live stream is open before the test acts, so no event it waits for can come first.
    await page.locator('.live-live').waitFor();
    return page;
  }

  async function shoot(page: Page, name: string): Promise<void> {
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  /** The task the page was sent to after a submit: its id from the URL. */
  async function openedTask(page: Page): Promise<string> {
    const refused = page.locator('form .error[role="alert"]');
    await Promise.race([page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/), refused.waitFor()]);
    if (await refused.isVisible()) throw new Error(`the submit was refused: ${await refused.textContent()}`);
    return page.url().split('/').pop()!;
  }

  it('serves one page with a strict CSP, keeps the credential out of URLs, and refuses a bad one', async () => {
    const res = await fetch(`${app.baseUrl}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect((await fetch(`${app.baseUrl}/console`, { redirect: 'manual' })).headers.get('location')).toBe('/console/');

    const page = await context.newPage();
    await page.goto(`${app.baseUrl}/console/`);
    await page.getByLabel('Token or API key').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/Not accepted/);

    const token = app.token('alice');
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.getByLabel('Token or API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
    await page.locator('.live-live').waitFor();
    // Kept for the tab only, and never put in a URL (the event stream goes over fetch with a header).
    // (Expressions run in the page: the test's own types have no DOM.)
    expect(await page.evaluate<string>('JSON.stringify(sessionStorage)')).toContain(token);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect(requests.filter((url) => url.includes(token))).toEqual([]);
    expect(requests.some((url) => url.endsWith('/api/v1/media/events'))).toBe(true);
    await page.close();
  });

  it('submits a subtitle task from its form and shows the SRT when it completes', async () => {
    const page = await signedIn(app.token('alice'));
    await page.getByRole('link', { name: 'Submit', exact: true }).click();
    await page.getByRole('link', { name: 'subtitle_generation' }).click();
    await page
      .getByRole('textbox', { name: 'Text', exact: true })
      .fill('Hello from the console. This line is the second cue.');
    await page.getByLabel(/^Format/).selectOption('srt');
    await page.getByRole('button', { name: 'Submit subtitle_generation' }).click();
    const id = await openedTask(page);
    await page.locator(`section.task[data-status="completed"]`).waitFor();
    const srt = await page.locator('[data-output="text"]').first().textContent();
    expect(srt).toContain('00:00:00,000 -->');
    expect(srt).toContain('Hello from the console.');
    const task = await app.request('GET', `/api/v1/media/tasks/${id}`);
    expect(task.body).toMatchObject({ status: 'completed', type: 'subtitle_generation' });
    await shoot(page, 'task-subtitles');
    await page.close();
  });

  it('submits an image task in the sandbox and shows the picture', async () => {
    const page = await signedIn(app.token('alice'));
    await page.goto(`${app.baseUrl}/console/#/submit/image_generation`);
    await page.getByLabel(/^Prompt/).fill('a lighthouse at dusk');
    await page.getByRole('button', { name: 'Submit image_generation' }).click();
    await openedTask(page);
    await page.locator(`section.task[data-status="completed"]`).waitFor();
    const image = page.locator('.image-grid img').first();
    await image.waitFor();
    await waitUntil(
      'the output image to load',
      () => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      {
        until: (width) => width > 0,
        timeoutMs: STEP_MS,
      },
    );
    await shoot(page, 'task-image');
    await page.close();
  });

  it('runs a task of every type from its form in the sandbox, with sample media, and renders every output', async () => {
    const page = await signedIn(app.token('dora'));
    // Every route the document marks as making a task (so a new type cannot be left out of the console), with the
    // fields of its first request example: the media ones among them get a sample.
    const examples = await page.evaluate<Record<string, string[]>>(
      `fetch('/docs-json').then((r) => r.json()).then((d) => Object.fromEntries(Object.values(d.paths)
        .flatMap((p) => Object.values(p)).filter((o) => o['x-task-type']).map((o) => {
          const value = Object.values(o.requestBody.content['application/json'].examples)[0].value;
          const names = Object.entries(value).flatMap(([k, v]) => Array.isArray(v) && typeof v[0] === 'object'
            ? Object.keys(v[0]) : [k]);
          return [o['x-task-type'], names];
        })))`,
    );
    const types = Object.keys(examples);
    expect(types.length).toBeGreaterThanOrEqual(8);
    const rendered: Record<string, string[]> = {};
    for (const type of types) {
      await page.goto(`${app.baseUrl}/console/#/submit/${type}`);
      await page.getByRole('button', { name: `Submit ${type}` }).waitFor();
      // The fields a type cannot do without: text for subtitles, and every required media input gets a sample.
      if (type === 'subtitle_generation') {
        await page.getByRole('textbox', { name: 'Text', exact: true }).fill('One. Two. Three.');
      }
      const media = page.locator('.field.media');
      for (let i = 0; i < (await media.count()); i++) {
        const name = (await media.nth(i).locator('input[type="text"]').getAttribute('name'))!.split('.').pop()!;
        if (!examples[type].includes(name)) continue;
        await media.nth(i).getByRole('button', { name: 'Use a sample' }).click();
        await waitUntil('the sample to fill the field', () => media.nth(i).locator('input[type="text"]').inputValue(), {
          until: (value) => value.startsWith('upload:'),
          timeoutMs: STEP_MS,
          intervalMs: 100,
        });
      }
      await page.getByRole('button', { name: `Submit ${type}` }).click();
      await openedTask(page);
      const task = page.locator('section.task');
      await page
        .locator('section.task[data-status="completed"], section.task[data-status="failed"]')
        .waitFor({ timeout: 60_000 });
      expect({ type, status: await task.getAttribute('data-status') }).toEqual({ type, status: 'completed' });
      const outputs = page.locator('.outputs');
      await outputs.waitFor();
      rendered[type] = await outputs.evaluate((el) =>
        [
          ...(el as unknown as { querySelectorAll(s: string): { tagName: string }[] }).querySelectorAll(
            'img, video, audio, pre[data-output]',
          ),
        ].map((node) => node.tagName.toLowerCase()),
      );
      if (type === 'caption') await shoot(page, 'task-caption');
    }
    // What each type makes, shown as what it is.
    expect(rendered).toMatchObject({
      image_generation: expect.arrayContaining(['img']),
      video_generation: expect.arrayContaining(['video']),
      audio_transcription: expect.arrayContaining(['pre']),
      subtitle_generation: expect.arrayContaining(['pre']),
      img2vid: expect.arrayContaining(['video']),
      caption: expect.arrayContaining(['video']),
      addaudio: expect.arrayContaining(['video']),
      image_edit: expect.arrayContaining(['img']),
    });
    await page.close();
  }, 240_000);

  it('updates the task list live: a task submitted elsewhere appears and reaches completed without a reload', async () => {
    const page = await signedIn(app.token('bob'));
    await expect(page.locator('tr[data-task-id]').count()).resolves.toBe(0);
    const created = await app.request('POST', '/api/v1/media/subtitles/generate', {
      as: 'bob',
      body: { text: 'Live rows.', format: 'vtt' },
    });
    expect(created.status).toBe(202);
    const id = (created.body as { id: string }).id;
    await page.locator(`tr[data-task-id="${id}"][data-status="completed"]`).waitFor();
    await expect(page.locator(`tr[data-task-id="${id}"] progress`).getAttribute('value')).resolves.toBe('100');
    // Another user's task never shows up in bob's list.
    await app.request('POST', '/api/v1/media/subtitles/generate', { as: 'carol', body: { text: 'Not yours.' } });
    await page.waitForTimeout(500);
    await expect(page.locator('tr[data-task-id]').count()).resolves.toBe(1);
    await page.close();
  });

  it('shows the final status of a task that ended while its new row was being read', async () => {
    const page = await signedIn(app.token('dave'));
    let reads = 0;
    let answered = false;
    let firstRead: string | undefined;
    // The list reads a new task's row when task.created arrives (which may come before the submit's own answer, so
    // the first read of a task's row is taken, whichever id it names: dave has no other task). It answers what the
    // row was before the task ran, and only once the task has completed (its events came meanwhile): the list must
    // read it again.
    await page.route(/\/api\/v1\/media\/tasks\/[0-9a-f-]{36}$/, async (route) => {
      if (reads++ > 0) return route.continue();
      const response = await route.fetch();
      const row = (await response.json()) as Record<string, unknown>;
      const id = (firstRead = row.id as string);
      await app.waitForTask(id, (x) => x.status === 'completed');
      await sleep(300); // the completed event reaches the page while this read is still out
      // The list may also have shown the row by another way (a reload when its stream connected) and the test ended.
      await route
        .fulfill({ response, json: { ...row, status: 'queued', progress: 0, output: null, completed_at: null } })
        .catch(() => undefined);
      answered = true;
    });
    const created = await app.request('POST', '/api/v1/media/subtitles/generate', {
      as: 'dave',
      body: { text: 'Quick end.', format: 'srt' },
    });
    const id = (created.body as { id: string }).id;
    await waitUntil('the first read to be answered', () => answered, { timeoutMs: STEP_MS });
    expect(firstRead).toBe(id);
    await page.locator(`tr[data-task-id="${id}"][data-status="completed"]`).waitFor();
    expect(reads).toBeGreaterThanOrEqual(2);
    await page.unrouteAll({ behavior: 'wait' });
    await page.close();
  });

  it('keeps the newest read of a row when an earlier read of it is answered last', async () => {
    const page = await signedIn(app.token('erin'));
    let held = false;
    let newerAnswered = false;
    let staleAnswered = false;
    // The row is shown queued (the task waits for its run_at), then read again on task.started and on
    // task.completed. The read made on task.started is answered last, with the row as it was while processing.
    await page.route(/\/api\/v1\/media\/tasks\/[0-9a-f-]{36}$/, async (route) => {
      const response = await route.fetch();
      const row = (await response.json()) as Record<string, unknown>;
      if (row.status === 'queued' || held) {
        await route.fulfill({ response, json: row });
        if (row.status === 'completed') newerAnswered = true;
        return;
      }
      held = true;
      await waitUntil('a newer read to be answered', () => newerAnswered, { timeoutMs: STEP_MS });
      await route
        .fulfill({ response, json: { ...row, status: 'processing', progress: 0, output: null, completed_at: null } })
        .catch(() => undefined);
      staleAnswered = true;
    });
    const created = await app.request('POST', '/api/v1/media/subtitles/generate', {
      as: 'erin',
      body: { text: 'Late answers.', format: 'srt', run_at: new Date(Date.now() + 1500).toISOString() },
    });
    expect(created.status).toBe(202);
    const id = (created.body as { id: string }).id;
    await page.locator(`tr[data-task-id="${id}"][data-status="queued"]`).waitFor();
    await waitUntil('the earlier read to be answered', () => staleAnswered, { timeoutMs: STEP_MS });
    await sleep(300); // time for the page to apply that answer, were it to
    await expect(page.locator(`tr[data-task-id="${id}"]`).getAttribute('data-status')).resolves.toBe('completed');
    await page.unrouteAll({ behavior: 'wait' });
    await page.close();
  });

  it('cancels a long task from its page', async () => {
    app.sandbox!.knobs.stuckRate = 1;
    try {
      const page = await signedIn(app.token('alice'));
      await page.goto(`${app.baseUrl}/console/#/submit/video_generation`);
      await page.getByLabel(/^Prompt/).fill('a slow pan over hills');
      await page.getByRole('button', { name: 'Submit video_generation' }).click();
      const id = await openedTask(page);
      await page.locator(`section.task[data-status="processing"]`).waitFor();
      await page.getByRole('button', { name: 'Cancel task' }).click();
      await page.locator(`section.task[data-status="cancelled"]`).waitFor();
      await expect(page.getByRole('button', { name: 'Retry task' }).isVisible()).resolves.toBe(true);
      const task = await app.request('GET', `/api/v1/media/tasks/${id}`);
      expect(task.body).toMatchObject({ status: 'cancelled' });
      await page.close();
    } finally {
      app.sandbox!.knobs.stuckRate = 0;
    }
  });

  it('replays a dead webhook delivery from the dead letters', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(500).end('down'));
    const created = await app.request('POST', '/api/v1/media/subtitles/generate', {
      body: {
        text: 'Deliver me.',
        webhook_url: `${receiver.url}/hook`,
        webhook_secret: 'console-test-secret-0123456789',
        webhook_events: ['task.completed'],
      },
    });
    expect(created.status).toBe(202);
    const id = (created.body as { id: string }).id;
    const dead = await waitUntil(
      'the delivery to be dead',
      async () => {
        const list = await app.request('GET', `/api/v1/media/tasks/${id}/webhooks`);
        return (list.body as { data: { id: string; status: string }[] }).data.find((d) => d.status === 'dead');
      },
      { timeoutMs: STEP_MS, intervalMs: 100 },
    );
    if (!dead) throw new Error('no dead delivery');
    const page = await signedIn(app.token('alice'));
    await page.getByRole('link', { name: 'Webhooks' }).click();
    const row = page.locator(`li[data-delivery-id="${dead.id}"]`);
    await row.waitFor();
    await expect(row.locator('table.attempts tbody tr').count()).resolves.toBeGreaterThanOrEqual(1);
    await shoot(page, 'webhooks');
    receiver.answer((_req, _n, res) => void res.writeHead(204).end());
    const before = receiver.received.length;
    await row.getByRole('button', { name: 'Replay' }).click();
    await row.getByRole('button', { name: 'Replay queued' }).waitFor();
    await receiver.waitFor((all) => all.slice(before).some((r) => r.json?.task_id === id), STEP_MS);
    await waitUntil(
      'the replayed delivery to be delivered',
      async () => (await app.request('GET', `/api/v1/media/webhooks/${dead.id}/status`)).body as { status: string },
      { until: (d) => d.status === 'delivered', timeoutMs: STEP_MS },
    );
    await page.close();
  });

  it('gives admins the queues, providers and API keys, the key shown once', async () => {
    const page = await signedIn(app.token('root', { admin: true }));
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByTestId('queue-stats').locator('th', { hasText: 'tasks' }).waitFor();
    await page.getByRole('rowheader', { name: 'subtitle-engine' }).waitFor();
    await page.getByLabel('Owner (user id)').fill('alice');
    await page.getByLabel('Name').fill('console key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('new-api-key').textContent())!.trim();
    expect(key.length).toBeGreaterThan(20);
    await shoot(page, 'admin');
    // The key works as alice's, and the console signs in with it.
    const keyPage = await signedIn(key);
    await expect(keyPage.locator('.user').textContent()).resolves.toContain('API key');
    await keyPage.close();
    await page.getByRole('button', { name: 'Revoke console key' }).click();
    await page
      .getByRole('row', { name: /console key/ })
      .getByText('revoked')
      .waitFor();
    const after = await fetch(`${app.baseUrl}/api/v1/media/tasks`, { headers: { 'x-api-key': key } });
    expect(after.status).toBe(401);
    await page.close();
  });

  it('fits a phone: no sideways scroll on the task list and the submit form at 375 px', async () => {
    const page = await signedIn(app.token('alice'), { width: 375, height: 740 });
    for (const route of ['tasks', 'submit/img2vid', 'webhooks']) {
      await page.goto(`${app.baseUrl}/console/#/${route}`);
      await page.locator('main h1').waitFor();
      await page.waitForTimeout(200);
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect({ route, overflow }).toEqual({ route, overflow: 0 });
    }
    await page.goto(`${app.baseUrl}/console/#/tasks`);
    await page.locator('tr[data-task-id]').first().waitFor();
    await shoot(page, 'tasks-phone');
    await page.close();
  });

  it('names every form control (labels a screen reader reads)', async () => {
    const page = await signedIn(app.token('alice'));
    for (const route of ['tasks', 'submit/img2vid', 'submit/caption', 'submit/image_edit']) {
      await page.goto(`${app.baseUrl}/console/#/${route}`);
      await page.locator('main h1').waitFor();
      const unnamed = await page.evaluate<string[]>(UNNAMED_CONTROLS);
      expect({ route, unnamed }).toEqual({ route, unnamed: [] });
    }
    await page.goto(`${app.baseUrl}/console/#/tasks`);
    await page.locator('tr[data-task-id]').first().waitFor();
    await shoot(page, 'tasks');
    await page.goto(`${app.baseUrl}/console/#/submit/img2vid`);
    await page.locator('main h1').waitFor();
    await shoot(page, 'submit');
    await page.close();
  });

  it('loads in under 200 KB compressed', async () => {
    const root = findConsoleBuild()!;
    const files = [join(root, 'index.html')];
    for (const name of await readdir(join(root, 'assets'))) files.push(join(root, 'assets', name));
    let total = 0;
    for (const file of files) total += gzipSync(await readFile(file)).length;
    expect(total).toBeLessThan(200 * 1024);
  });
});
