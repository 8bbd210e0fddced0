/**
 * Behaviour knobs shared by every provider emulator (sandbox mode and tests). Mutable at run time: tests and the
 * admin endpoint change them on a live emulator.
 */
export interface EmulatorKnobs {
  /** Added to every answer, ms. */
  latencyMs: number;
  /** 0..1: share of requests answered 500 (or, for async jobs, of jobs that end FAILED). */
  failureRate: number;
  /** 0..1: share of requests answered 429 with Retry-After: 1. */
  rateLimitRate: number;
  /** 0..1: share of async jobs that never finish (stay running until cancelled). */
  stuckRate: number;
  /** Polls an async job answers "running" before it finishes. */
  asyncSteps: number;
  /**
   * RunPod's simulated execution: ms of work per clip (per image for img2vid, one clip otherwise). A job finishes no
   * sooner than this times its clips, so cap and fan-out tests see execution times that grow with the work.
   */
  clipMs: number;
}

export const DEFAULT_KNOBS: EmulatorKnobs = {
  latencyMs: 0,
  failureRate: 0,
  rateLimitRate: 0,
  stuckRate: 0,
  asyncSteps: 2,
  clipMs: 0,
};

/** What an emulator counts, so tests can assert on what the provider saw. */
export class EmulatorStats {
  /** Requests per "METHOD /path-pattern". */
  readonly requests = new Map<string, number>();
  /** Jobs (or generations) accepted. */
  submissions = 0;
  /** Async jobs neither finished nor cancelled right now, and the most ever at once. */
  inFlight = 0;
  maxInFlight = 0;
  /**
   * Jobs accepted and not yet final, queued or running, and the most ever at once (RunPod): what the platform holds
   * at the provider, whereas `inFlight` only counts the jobs a worker is on.
   */
  outstanding = 0;
  maxOutstanding = 0;
  /** Bodies of the last requests (JSON, or multipart fields as an object; file parts as {filename, size, type}). */
  readonly lastBodies: unknown[] = [];

  count(route: string, body?: unknown): void {
    this.requests.set(route, (this.requests.get(route) ?? 0) + 1);
    if (body !== undefined) {
      this.lastBodies.push(body);
      if (this.lastBodies.length > 50) this.lastBodies.shift();
    }
  }

  jobStarted(): void {
    this.submissions++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
  }

  jobEnded(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  reset(): void {
    this.requests.clear();
    this.lastBodies.length = 0;
    this.submissions = 0;
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.outstanding = 0;
    this.maxOutstanding = 0;
  }
}

/** Deterministic pseudo-random in [0,1) from a counter, so knob rates behave the same in every run. */
export function roll(state: { rolls: number }, seed = 0x9e3779b9): number {
  state.rolls++;
  let x = (state.rolls * seed) >>> 0;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 0x100000000;
}

/** The sandbox's own API key: emulators accept it, and only it. */
export const SANDBOX_API_KEY = 'sandbox-key-0000000000000000';

/** The latency knob: waits `ms`, or less if the client hangs up (`signal`), so no job is made behind its back. */
export function latency(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * The latency knob applied to one request: waits, or stops early if the client hangs up. True when the client is
 * gone, so the emulator does nothing it did not wait for (no job made behind its back).
 */
export async function clientLeftDuringLatency(
  reply: { raw: { destroyed: boolean; on(event: 'close', fn: () => void): unknown } },
  ms: number,
): Promise<boolean> {
  if (reply.raw.destroyed) return true;
  const gone = new AbortController();
  reply.raw.on('close', () => gone.abort());
  await latency(ms, gone.signal);
  return gone.signal.aborted;
}
