import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { TestApp } from '../../../test/support/test-app';
import { WebhookReceiver } from '../../../test/support/webhook-receiver';

/** The browser bundle `npm run build` makes in the client (scripts/bundle.js). */
const BUNDLE = join(__dirname, '..', 'dist', 'browser', 'media-tasks.js');
const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;

/** What the page's script leaves on `window.outcome`. */
interface Outcome {
  error?: string;
  task: { id: string; status: string };
  events: { event_type: string; sequence: number }[];
  verified?: { event_type: string; task_id: string };
  refused?: string;
}

describe('the TypeScript client in headless Chromium', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let browser: Browser;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    t = await TestApp.start({ sandbox: true });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      timeout: 10000,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
    await receiver.close();
  });

  it('creates an image task and watches it over EventSource with a stream token, then verifies its webhook', async () => {
    const token = t.token('browser-user');
    const page = await browser.newPage();
    // The page and the bundle are served on the platform's own origin, as an app that embeds the client would be.
    const bundle = await readFile(BUNDLE, 'utf8');
    await page.route(`${t.baseUrl}/client/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/client/media-tasks.js') return route.fulfill({ contentType: 'text/javascript', body: bundle });
      return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>client</title>' });
    });
    const requests: { url: string; method: string; authorization?: string }[] = [];
    page.on('request', (r) =>
      requests.push({ url: r.url(), method: r.method(), authorization: r.headers()['authorization'] }),
    );
    await page.goto(`${t.baseUrl}/client/index.html`);

    const runAt = new Date(Date.now() + 1500).toISOString();
    const webhookUrl = `${receiver.url}/browser`;
    await page.addScriptTag({
      type: 'module',
      content: `
        import { MediaTasks } from '/client/media-tasks.js';
        const media = new MediaTasks({ baseUrl: location.origin, token: ${JSON.stringify(token)} });
        try {
          const task = await media.tasks.create('image', {
            prompt: 'a lighthouse in a browser', run_at: ${JSON.stringify(runAt)},
            webhook_url: ${JSON.stringify(webhookUrl)}, webhook_secret: ${JSON.stringify(SECRET)},
            webhook_events: ['task.completed'],
          });
          const events = [];
          for await (const event of media.tasks.watch(task.id)) events.push(event);
          window.outcome = { task: await media.tasks.get(task.id), events };
        } catch (err) {
          window.outcome = { error: String(err) };
        }
        window.media = media;
      `,
    });
    await page.waitForFunction('"outcome" in window', undefined, { timeout: 15000 });
    const outcome = await page.evaluate<Outcome>('window.outcome');
    expect(outcome.error).toBeUndefined();
    expect(outcome.task.status).toBe('completed');
    expect(outcome.events.map((e) => e.event_type)).toEqual(expect.arrayContaining(['task.started']));
    expect(outcome.events.at(-1)?.event_type).toBe('task.completed');

    // EventSource carried the stream token in its URL, never the user's token; every other call sent the header.
    const id = outcome.task.id;
    const streams = requests.filter((r) => new URL(r.url).pathname === `/api/v1/media/tasks/${id}/events`);
    expect(streams.length).toBeGreaterThanOrEqual(1);
    for (const stream of streams) {
      expect(new URL(stream.url).searchParams.get('token')).not.toBe(token);
      expect(new URL(stream.url).searchParams.get('token')).toEqual(expect.any(String));
      expect(stream.authorization).toBeUndefined();
    }
    const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/api/') && !streams.includes(r));
    expect(api.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      'POST /api/v1/media/images/generate',
      `POST /api/v1/media/tasks/${id}/events/token`,
      `GET /api/v1/media/tasks/${id}`,
    ]);
    expect(api.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);

    // The webhook the platform sent, checked by the bundle in the page: genuine, then tampered.
    const [hook] = await receiver.waitFor((all) => all.length > 0).then((all) => all);
    const verdict = await page.evaluate<Pick<Outcome, 'verified' | 'refused'>>(
      `(() => {
        const hook = ${JSON.stringify({ body: hook.body, headers: hook.headers })};
        const verified = window.media.webhooks.verify(hook.body, hook.headers, ${JSON.stringify(SECRET)});
        let refused;
        try {
          window.media.webhooks.verify(hook.body.replace('completed', 'failed'), hook.headers, ${JSON.stringify(SECRET)});
        } catch (err) {
          refused = err.name;
        }
        return { verified, refused };
      })()`,
    );
    expect(verdict.verified).toMatchObject({ event_type: 'task.completed', task_id: id });
    expect(verdict.refused).toBe('WebhookVerificationError');
  }, 30000);
});
