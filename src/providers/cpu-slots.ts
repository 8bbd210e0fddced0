/**
 * Turns at the process's own CPU (LOCAL_CPU_CONCURRENCY, the machine's cores by default): the providers that work on
 * the worker itself (local ffmpeg's encodes, the image operations) take one for each heavy step. A worker runs many
 * tasks at once because most of them wait on a provider; CPU-bound ones past the cores would only share the same
 * cores slower and hold their memory longer, so they wait here in arrival order instead.
 */
export class CpuSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`CpuSlots: size must be a positive integer, not ${size}`);
  }

  /** Steps running now and waiting for a turn. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /** Runs `work` once a turn is free; a task stopped while it waits (`signal`) leaves the line with the reason. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.take(signal);
    try {
      return await work();
    } finally {
      this.give();
    }
  }

  private take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.running < this.size) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        const at = this.waiting.indexOf(turn);
        if (at >= 0) this.waiting.splice(at, 1);
        // The signal's own reason, as throwIfAborted throws it.
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.waiting.push(turn);
    });
  }

  /** The turn passes straight to the first in line (the count stays), or is freed. */
  private give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
