import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Redis from 'ioredis';
import { probeRedis } from './probes';
import {
  execFileAsync,
  findOnPath,
  freePort,
  isAlive,
  logTail,
  processName,
  RunningService,
  signal,
  stopProcess,
  waitFor,
} from './processes';

export interface RedisServerOptions {
  dataDir: string;
  logFile: string;
  /** False for throwaway data (the test suite): nothing is written to disk. */
  durable: boolean;
}

/** Why this machine cannot start a Redis of its own, or undefined when it can. */
export async function whyNoRedisServer(): Promise<string | undefined> {
  return (await findOnPath('redis-server')) ? undefined : 'there is no redis-server on PATH';
}

/** Where the server of a folder says it runs, so a later run can find it if this process dies without stopping it. */
const STATE_FILE = 'server.json';

/**
 * Starts the machine's redis-server on a free loopback port with its data (an append-only file) in `dataDir`, or takes
 * over the one an earlier run left running on the same folder.
 */
export async function startRedisServer(options: RedisServerOptions): Promise<RunningService> {
  const binary = await findOnPath('redis-server');
  if (!binary) throw new Error('there is no redis-server on PATH');
  await mkdir(options.dataDir, { recursive: true });
  const dataDir = await realpath(options.dataDir);
  const version = await execFileAsync(binary, ['--version']).then(
    ({ stdout }) => /v=(\S+)/.exec(stdout)?.[1] ?? '',
    () => '',
  );

  const adopted = await adoptRunning(dataDir);
  if (adopted) return handle(dataDir, version, adopted.pid, adopted.port, true);

  const port = await freePort();
  const log = openSync(options.logFile, 'w');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--daemonize', 'no', '--save', ''];
  args.push('--appendonly', options.durable ? 'yes' : 'no');
  // Its own process group: Ctrl-C in the terminal reaches the platform, which stops the server after it drained.
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = sig ? `signal ${sig}` : `code ${code}`));
  child.once('error', (err) => (exited = err.message));
  const url = `redis://127.0.0.1:${port}`;
  const ready = await waitFor(
    async () => exited !== undefined || (await probeRedis(url, 1000)).state === 'answers',
    20_000,
    50,
  );
  if (exited !== undefined || !ready) {
    if (child.pid) signal(child.pid, 'SIGKILL');
    const why = exited ? `it exited (${exited})` : 'it did not answer within 20 s';
    throw new Error(`${why}; ${options.logFile}: ${await logTail(options.logFile)}`);
  }
  await writeFile(join(dataDir, STATE_FILE), JSON.stringify({ pid: child.pid, port }));
  return handle(dataDir, version, child.pid!, port, false);
}

function handle(dataDir: string, version: string, pid: number, port: number, adopted: boolean): RunningService {
  const forget = () => rm(join(dataDir, STATE_FILE), { force: true });
  return {
    name: 'redis',
    url: `redis://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    dataDir,
    version,
    adopted,
    // SIGTERM: Redis flushes its append-only file and exits.
    stop: async () => {
      await stopProcess(pid, 'SIGTERM', 'SIGKILL', 15_000);
      await forget();
    },
    stopNow: () => signal(pid, 'SIGTERM'),
  };
}

async function adoptRunning(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const state = await readFile(join(dataDir, STATE_FILE), 'utf8').then(
    (text) => JSON.parse(text) as { pid: number; port: number },
    () => undefined,
  );
  if (!state || !isAlive(state.pid) || !(await processName(state.pid))?.includes('redis')) return undefined;
  // It may be starting or shutting down: give it a few seconds to answer or to go.
  const url = `redis://127.0.0.1:${state.port}`;
  await waitFor(async () => !isAlive(state.pid) || (await probeRedis(url, 1000)).state === 'answers', 10_000, 100);
  if (!isAlive(state.pid)) return undefined;
  const client = new Redis({
    host: '127.0.0.1',
    port: state.port,
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const [, dir] = (await client.config('GET', 'dir')) as [string, string];
    return dir === dataDir ? state : undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}
