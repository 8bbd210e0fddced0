import { ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { TEST_QUEUE_BACKEND } from './databases';
import { TEST_JWT_SECRET } from './test-app';
import { waitUntil } from './wait';

const ROOT = join(__dirname, '..', '..');

/**
 * The platform as `npm start` runs it (`src/main.ts`, transpiled on require), in a process of its own: for tests that
 * kill it, signal it, or cut its dependencies away.
 */
export class PlatformProcess {
  /** Everything the process wrote to stdout and stderr so far. */
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitedAt?: number;

  private constructor(
    readonly child: ChildProcess,
    /** Started as a process group of its own: `kill` ends the group, whatever the child started. */
    private readonly group = false,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitedAt = Date.now();
        resolve({ code, signal });
      }),
    );
  }

  /**
   * Starts one; `env` is laid over test defaults (a test JWT secret, live providers, no rate limit, no cache, loopback
   * allowed).
   */
  static spawn(env: Record<string, string>): PlatformProcess {
    return PlatformProcess.start(
      process.execPath,
      ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), join(ROOT, 'src', 'main.ts')],
      env,
    );
  }

  /**
   * `npm start` itself (the build, then the built platform), with the same defaults, in a process group of its own so
   * that `kill` also ends what npm started.
   */
  static npmStart(env: Record<string, string>): PlatformProcess {
    return PlatformProcess.start('npm', ['start', '--silent'], env, true);
  }

  private static start(command: string, args: string[], env: Record<string, string>, group = false): PlatformProcess {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        // The real providers unless a test says otherwise (auto would start the sandbox for want of keys).
        PROVIDERS_MODE: 'live',
        JWT_SECRET: TEST_JWT_SECRET,
        QUEUE_BACKEND: TEST_QUEUE_BACKEND,
        LOG_LEVEL: 'warn',
        RATE_LIMIT_PER_MINUTE: '0',
        RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE: '0',
        CACHE_ENABLED: 'false',
        WEBHOOK_ALLOW_PRIVATE: 'true',
        STORAGE_DIR: join(tmpdir(), `media-test-child-${process.pid}`),
        CACHE_DIR: join(tmpdir(), `media-test-child-cache-${process.pid}`),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group,
    });
    return new PlatformProcess(child, group);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits (bounded) until the process has written a line matching `pattern`. */
  async waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const written = () => {
      if (pattern.test(this.output)) return true;
      if (!this.running) throw new Error(`the process exited before writing ${pattern}`);
      return false;
    };
    await waitUntil(`the process to write ${pattern}`, written, { timeoutMs, intervalMs: 50 }).catch((err: Error) => {
      throw new Error(`${err.message}:\n${this.output}`);
    });
  }

  /** Waits (bounded) until `url` answers 200. */
  async waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
    const status = async () => {
      if (!this.running) throw new Error(`the process exited before ${url} answered`);
      return fetch(url).then(
        (res) => res.status,
        () => 0,
      );
    };
    await waitUntil(`${url} to answer 200`, status, { timeoutMs, intervalMs: 100, until: (s) => s === 200 }).catch(
      (err: Error) => {
        throw new Error(`${err.message}:\n${this.output}`);
      },
    );
  }

  /**
   * Sends `signal` and answers how long the process took to exit, in ms, or undefined when it was still running
   * `giveUpMs` later (it is then killed).
   */
  async stopWith(signal: NodeJS.Signals, giveUpMs: number): Promise<number | undefined> {
    const sent = Date.now();
    this.child.kill(signal);
    const outcome = await Promise.race([this.exited.then(() => 'exited'), pause(giveUpMs, 'running', { ref: false })]);
    if (outcome === 'running') {
      await this.kill();
      return undefined;
    }
    return this.exitedAt! - sent;
  }

  /** SIGKILL, if it still runs (to its whole group, when it has one); resolves once it has exited. */
  async kill(): Promise<void> {
    if (this.group) {
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    } else if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}
