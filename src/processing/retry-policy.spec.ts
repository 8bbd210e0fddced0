import { ProviderError } from '../providers/provider.port';
import { TASK_BACKOFF_TYPE } from '../queue/queue.constants';
import { makeBackoffStrategy, retryDelay } from './retry-policy';
import { resolveTaskTimeouts } from './task-timeouts';

describe('retry policy', () => {
  const delays = [30_000, 300_000, 1_800_000];

  it('follows the configured delays, repeating the last one', () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4].map((n) => retryDelay(n, delays, undefined, mid))).toEqual([
      30_000, 300_000, 1_800_000, 1_800_000,
    ]);
  });

  it('jitters by at most ±10 %', () => {
    expect(retryDelay(1, delays, undefined, () => 0)).toBe(27_000);
    expect(retryDelay(1, delays, undefined, () => 0.999999)).toBe(33_000);
  });

  it("waits at least as long as the provider's Retry-After", () => {
    const err = ProviderError.transient('rate_limited', '429', 120_000);
    expect(retryDelay(1, delays, err, () => 0.5)).toBe(120_000);
    expect(retryDelay(2, delays, err, () => 0.5)).toBe(300_000);
  });

  it('only answers for its own backoff type', () => {
    const strategy = makeBackoffStrategy([100]);
    expect(strategy(1, 'exponential')).toBe(-1);
    expect(strategy(1, TASK_BACKOFF_TYPE)).toBeGreaterThanOrEqual(90);
  });
});

describe('task timeouts', () => {
  it('uses the defaults, overridden per type in seconds', () => {
    const timeouts = resolveTaskTimeouts({ caption: 5 });
    expect(timeouts.caption).toBe(5000);
    expect(timeouts.img2vid).toBe(3_600_000);
    expect(timeouts.addaudio).toBe(300_000);
  });

  it('stops the boot on an unknown type name', () => {
    expect(() => resolveTaskTimeouts({ captions: 5 })).toThrow(/unknown task types: captions/);
  });
});
