import { setTimeout as pause } from 'node:timers/promises';

export interface WaitOptions<T> {
  /** Gives up (throws) after this long; default 10 s. */
  timeoutMs?: number;
  /** Time between two looks; default 20 ms. */
  intervalMs?: number;
  /** Whether a value seen is the one awaited; default: any truthy value. */
  until?: (value: T) => boolean;
}

/**
 * Looks at `probe` until it shows what the test waits for (a row, a status, a count, a request received) and answers
 * that value; throws naming `what` and the last value seen when it never does. Tests wait on this instead of a fixed
 * time, so a slow machine makes them slower, not wrong.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => T | Promise<T>,
  options: WaitOptions<T> = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 20, until = Boolean } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (until(value)) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}; last seen: ${describe(value)}`);
    await pause(intervalMs);
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
