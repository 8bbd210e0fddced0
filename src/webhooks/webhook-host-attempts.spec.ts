import { setTimeout as pause } from 'node:timers/promises';
import { BackendFixture, BACKENDS, BackendName } from '../../test/support/backend-fixture';
import { PostgresWebhookHostAttempts } from './postgres-webhook-host-attempts';
import { RedisWebhookHostAttempts } from './redis-webhook-host-attempts';
import type { WebhookHostAttempts } from './webhook-host-attempts';

describe.each(BACKENDS)('webhook host attempts on %s', (backend: BackendName) => {
  let fixture: BackendFixture;
  let one: WebhookHostAttempts;
  let two: WebhookHostAttempts;

  beforeAll(async () => {
    fixture = await BackendFixture.start({ WEBHOOK_HOST_RATE_PER_SECOND: '5' });
    const [a, b] = [await fixture.process(), await fixture.process()];
    [one, two] =
      backend === 'postgres'
        ? [
            new PostgresWebhookHostAttempts(fixture.config, a.sql),
            new PostgresWebhookHostAttempts(fixture.config, b.sql),
          ]
        : [
            new RedisWebhookHostAttempts(fixture.config, a.redis),
            new RedisWebhookHostAttempts(fixture.config, b.redis),
          ];
  });
  afterAll(async () => {
    for (const attempts of [one, two]) (attempts as Partial<PostgresWebhookHostAttempts>).onApplicationShutdown?.();
    await fixture?.close();
  });

  /** The first attempt of a window with at least 600 ms left, so what follows falls in it. */
  async function freshWindow(host: string): Promise<void> {
    for (;;) {
      const window = await one.add(host);
      if (window.attempts === 1 && window.msBeforeNext >= 600) return;
      await pause(window.msBeforeNext + 5);
    }
  }

  it("count every process's attempts to a host in one window, past the limit too", async () => {
    await freshWindow('a.example');
    const windows = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? one : two).add('a.example')));
    expect(windows.map((w) => w.attempts).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
    for (const w of windows) {
      expect(w.msBeforeNext).toBeGreaterThan(0);
      expect(w.msBeforeNext).toBeLessThanOrEqual(1000);
    }
    expect((await two.add('b.example')).attempts).toBe(1);
  });

  it('start again from one in the next window', async () => {
    await freshWindow('c.example');
    const window = await two.add('c.example');
    expect(window.attempts).toBe(2);
    await pause(window.msBeforeNext + 5);
    expect((await one.add('c.example')).attempts).toBe(1);
  });

  if (backend === 'postgres') {
    it('sweep the windows that ended over a minute ago', async () => {
      await (
        await fixture.process()
      ).sql.rows(
        `INSERT INTO webhook_host_attempts (host, window_start, attempts)
         VALUES ('old.example', floor(extract(epoch FROM now())) - 120, 3)`,
      );
      await (one as PostgresWebhookHostAttempts).sweep();
      const rows = await (
        await fixture.process()
      ).sql.rows(`SELECT host FROM webhook_host_attempts WHERE host = 'old.example'`);
      expect(rows).toEqual([]);
      expect((await one.add('c.example')).attempts).toBeGreaterThan(0);
    });
  }
});
