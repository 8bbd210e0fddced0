import { AppConfig } from '../config/app-config';
import { HostWindow, WebhookHostAttempts } from './webhook-host-attempts';
import { WebhookHostLimit } from './webhook-host-limit';

const URL_A = 'https://receiver.example/hooks';

/** One shared count per host, as Redis or Postgres keeps it, in a window that does not end during a test. */
class SharedCount extends WebhookHostAttempts {
  readonly counts = new Map<string, number>();
  readonly adds: number[] = [];
  /** When set, counts are answered only once it resolves (a slow Redis). */
  gate?: Promise<void>;

  async add(host: string, count = 1): Promise<HostWindow> {
    this.adds.push(count);
    await new Promise((resolve) => setImmediate(resolve)); // a round trip
    await this.gate;
    const attempts = (this.counts.get(host) ?? 0) + count;
    this.counts.set(host, attempts);
    return { attempts, msBeforeNext: 60_000 };
  }
}

const limitOf = (rate: number, shared: SharedCount) =>
  new WebhookHostLimit(AppConfig.fromEnv({ WEBHOOK_HOST_RATE_PER_SECOND: String(rate) }), shared);

describe('WebhookHostLimit', () => {
  it('counts one attempt at a time under 100 a second', async () => {
    const shared = new SharedCount();
    const limit = limitOf(5, shared);
    const waits = [];
    for (let i = 0; i < 7; i++) waits.push(await limit.take(URL_A));
    expect(waits.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(waits[5]).toBeGreaterThan(0);
    expect(shared.adds).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  it('takes a fiftieth of the rate at a time from the shared count, and hands the slots out itself', async () => {
    const shared = new SharedCount();
    const limit = limitOf(1000, shared);
    for (let i = 0; i < 60; i++) expect(await limit.take(URL_A)).toBe(0);
    // The next 20 are counted once fewer than 5 are left: never more than one take ahead of the attempts.
    expect(shared.adds).toEqual([20, 20, 20, 20]);
    // Attempts arriving together wait for the one count under way rather than each taking slots.
    const together = new SharedCount();
    const fresh = limitOf(1000, together);
    expect(await Promise.all(Array.from({ length: 20 }, () => fresh.take(URL_A)))).toEqual(Array(20).fill(0));
    expect(together.adds).toEqual([20, 20]); // the first count, and the next one started before the slots ran out
  });

  it('counts the next slots while some are held, so attempts do not wait for a slow count', async () => {
    const shared = new SharedCount();
    const limit = limitOf(1000, shared);
    for (let i = 0; i < 15; i++) expect(await limit.take(URL_A)).toBe(0);
    expect(shared.adds).toEqual([20]);
    let answer!: () => void;
    shared.gate = new Promise<void>((resolve) => (answer = resolve)); // Redis slows down
    expect(await limit.take(URL_A)).toBe(0); // 4 of the first 20 left: the next count starts
    expect(shared.adds).toEqual([20, 20]);
    for (let i = 0; i < 4; i++) expect(await limit.take(URL_A)).toBe(0); // while that count is not answered
    expect(shared.adds).toEqual([20, 20]);
    const waiting = limit.take(URL_A); // none held now: this one waits for the count
    let answered = false;
    void waiting.then(() => (answered = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    answer();
    expect(await waiting).toBe(0);
    expect(shared.counts.get('receiver.example')).toBe(40);
  });

  it('never lets the processes together past the rate, and counts one at a time once the window is nearly full', async () => {
    const shared = new SharedCount();
    const [one, two] = [limitOf(100, shared), limitOf(100, shared)];
    const waits = await Promise.all(Array.from({ length: 150 }, (_, i) => (i % 2 ? one : two).take(URL_A)));
    expect(waits.filter((w) => w === 0).length).toBeLessThanOrEqual(100);
    expect(waits.filter((w) => w === 0).length).toBeGreaterThanOrEqual(90);
    // Held back, not dropped: every attempt over the rate is told to wait for a later window.
    expect(waits.filter((w) => w > 0).every((w) => w >= 60_000)).toBe(true);
    // Past the limit each process counted single attempts again (their place decides how long they wait).
    expect(shared.adds.slice(-10)).toEqual(Array(10).fill(1));
  });
});
