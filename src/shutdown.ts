import type { INestApplication } from '@nestjs/common';

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * The part of SHUTDOWN_TIMEOUT_MS running tasks get to finish: the rest (a fifth, at most 5 s) is kept for aborting
 * what still runs, handing it back to the queue and closing connections, so all of it fits in the timeout.
 */
export function drainBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(5000, Math.round(timeoutMs / 5));
}

/**
 * Owns SIGTERM and SIGINT for a process of the platform, from the start of its boot: a signal during the boot ends
 * the process at once (nothing is served or running yet); once the app is attached, the app is closed (its hooks end
 * streams and waits, drain the workers, close connections) and the process exits. Whatever state Postgres and Redis
 * are in — a close can wait forever on a dependency that does not answer — the process exits SHUTDOWN_TIMEOUT_MS
 * after the signal at the latest, so an orchestrator's deploy or scale-down never waits out its grace period. A
 * second signal exits at once.
 */
export class ShutdownOnSignal {
  private app?: INestApplication;
  private signalled = false;

  private constructor(
    private readonly timeoutMs: number,
    private readonly write: (line: string) => void,
  ) {}

  static install(
    timeoutMs: number,
    write = (line: string) => void process.stderr.write(`${line}\n`),
  ): ShutdownOnSignal {
    const shutdown = new ShutdownOnSignal(timeoutMs, write);
    for (const signal of SIGNALS) process.on(signal, () => shutdown.onSignal(signal));
    return shutdown;
  }

  /** The app to close on a signal (before it listens: a signal while it starts closes it too). */
  attach(app: INestApplication): void {
    this.app = app;
  }

  private onSignal(signal: NodeJS.Signals): void {
    if (this.signalled) {
      this.write(`${signal} again: exiting now`);
      process.exit(1);
    }
    this.signalled = true;
    if (!this.app) {
      this.write(`${signal} during the boot: exiting`);
      process.exit(0);
    }
    this.write(`${signal}: shutting down (at most ${this.timeoutMs} ms)`);
    // Not holding the process open by itself: if everything closes sooner, the process ends sooner.
    setTimeout(() => {
      this.write(`shutdown still under way after SHUTDOWN_TIMEOUT_MS (${this.timeoutMs} ms): exiting`);
      process.exit(1);
    }, this.timeoutMs).unref();
    void this.close();
  }

  private async close(): Promise<void> {
    try {
      await this.app!.close();
    } catch (err) {
      this.write(`shutdown failed: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    }
    process.exit(0);
  }
}
