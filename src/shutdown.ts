import type { INestApplication } from '@nestjs/common';

/** SIGHUP too: a closed terminal drains the platform like Ctrl-C does. */
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
/** A signal this soon after the first is the same request, passed on by a parent process (see ShutdownOnSignal). */
const SAME_REQUEST_MS = 1000;

/**
 * The part of SHUTDOWN_TIMEOUT_MS running tasks get to finish: the rest (a fifth, at most 5 s) is kept for aborting
 * what still runs, handing it back to the queue and closing connections, so all of it fits in the timeout.
 */
export function drainBudgetMs(timeoutMs: number): number {
  return timeoutMs - Math.min(5000, Math.round(timeoutMs / 5));
}

/**
 * Owns SIGTERM, SIGINT and SIGHUP for a process of the platform, from the start of its boot. Once the app is attached, a
 * signal closes it (its hooks end streams and waits, drain the workers, close connections); during the boot, nothing
 * is served or running yet, so there is nothing to close. Then the work given to `afterClose` runs (stopping what
 * main.ts started beside the app) and the process exits. Whatever state Postgres and Redis are in — a close can wait
 * forever on a dependency that does not answer — the process exits SHUTDOWN_TIMEOUT_MS after the signal at the
 * latest, so an orchestrator's deploy or scale-down never waits out its grace period. A second signal exits at once,
 * unless it comes within a second of the first: Ctrl-C under `npm start` reaches the process twice, from the terminal
 * and from the Nest CLI passing it on, and that is one request to stop, not an impatient second one.
 */
export class ShutdownOnSignal {
  private app?: INestApplication;
  private readonly cleanups: (() => unknown)[] = [];
  private signalledAt?: number;

  private constructor(
    private readonly timeoutMs: number,
    private readonly write: (line: string) => void,
  ) {}

  static install(
    timeoutMs: number,
    write = (line: string) => void process.stderr.write(`${line}\n`),
  ): ShutdownOnSignal {
    const shutdown = new ShutdownOnSignal(timeoutMs, write);
    for (const signal of SIGNALS) process.on(signal, () => void shutdown.onSignal(signal));
    return shutdown;
  }

  /** The app to close on a signal (before it listens: a signal while it starts closes it too). */
  attach(app: INestApplication): void {
    this.app = app;
  }

  /** Work to run on a signal once the app is closed (or at once, during the boot), within the same deadline. */
  afterClose(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  private async onSignal(signal: NodeJS.Signals): Promise<void> {
    if (this.signalledAt !== undefined) {
      if (Date.now() - this.signalledAt < SAME_REQUEST_MS) return;
      this.write(`${signal} again: exiting now`);
      process.exit(1);
    }
    this.signalledAt = Date.now();
    this.write(`${signal}: shutting down${this.app ? '' : ' during the boot'} (at most ${this.timeoutMs} ms)`);
    // Not holding the process open by itself: if everything closes sooner, the process ends sooner.
    setTimeout(() => {
      this.write(`shutdown still under way after SHUTDOWN_TIMEOUT_MS (${this.timeoutMs} ms): exiting`);
      process.exit(1);
    }, this.timeoutMs).unref();
    let failed = false;
    for (const step of [() => this.app?.close(), ...this.cleanups.reverse()]) {
      try {
        await step();
      } catch (err) {
        failed = true;
        this.write(`shutdown: ${(err as Error).stack ?? String(err)}`);
      }
    }
    process.exit(failed ? 1 : 0);
  }
}
