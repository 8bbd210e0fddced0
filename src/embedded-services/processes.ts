import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

/** A service this process started (or took over from an earlier run that could not stop it) and will stop. */
export interface RunningService {
  name: 'postgres' | 'redis';
  /** The URL the platform connects with (loopback, no password). */
  url: string;
  /** `127.0.0.1:port`, for people. */
  address: string;
  dataDir: string;
  version: string;
  /** True when the server was already running from an earlier run's data folder and is reused as it is. */
  adopted: boolean;
  /** Stops the server and waits until it is gone. */
  stop(): Promise<void>;
  /** Asks the server to stop without waiting (for `process.on('exit')`, where nothing can be awaited). */
  stopNow(): void;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Sends `first`, waits up to `graceMs` for the process to end, then sends `last` and waits a little more. */
export async function stopProcess(pid: number, first: NodeJS.Signals, last: NodeJS.Signals, graceMs: number) {
  signal(pid, first);
  if (await waitFor(() => !isAlive(pid), graceMs)) return;
  signal(pid, last);
  await waitFor(() => !isAlive(pid), 5000);
}

/** Polls `check` until it is true or `timeoutMs` passes; says which. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** The executable `name` on PATH, or undefined. */
export async function findOnPath(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

/** The command name of a live process, when the system says (Linux /proc, else `ps`). */
export async function processName(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    try {
      return (await execFileAsync('ps', ['-p', String(pid), '-o', 'comm='])).stdout.trim() || undefined;
    } catch {
      return undefined;
    }
  }
}

/** The last lines of a log file, to say why a server stopped. */
export async function logTail(file: string, lines = 5): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return text.split('\n').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}
