import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { execFileAsync, stopProcess } from '../../src/embedded-services/processes';
import { waitUntil } from './wait';

/** Whether nothing listens on a loopback port. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * `count` ports below 55535 each free with its cluster bus port (the port + 10000) free too: the operating system's
 * own free ports are often too high for that.
 */
async function freeClusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (ports.includes(port) || ports.includes(port + 10000) || ports.includes(port - 10000)) continue;
    if ((await isFree(port)) && (await isFree(port + 10000))) ports.push(port);
  }
  return ports;
}

/**
 * A throwaway Redis Cluster of `masters` masters (no replicas) on loopback, made by the machine's redis-server and
 * `redis-cli --cluster create`: nothing is kept on disk, and stop() removes its folder.
 */
export class RedisClusterFixture {
  private constructor(
    readonly ports: number[],
    private readonly dir: string,
    private readonly servers: ChildProcess[],
  ) {}

  /** A seed node's URL, as REDIS_URL with REDIS_CLUSTER=true takes it. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  static async start(masters = 3): Promise<RedisClusterFixture> {
    const dir = await mkdtemp(join(tmpdir(), 'media-redis-cluster-'));
    const ports = await freeClusterPorts(masters);
    const servers = ports.map((port) =>
      spawn(
        'redis-server',
        [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no'],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`],
          ...['--cluster-node-timeout', '5000', '--appendonly', 'no', '--save', ''],
        ],
        { stdio: 'ignore' },
      ),
    );
    const fixture = new RedisClusterFixture(ports, dir, servers);
    try {
      for (const port of ports) {
        await waitUntil(`redis-server on ${port}`, () => cli(port, 'PING').catch(() => ''), {
          timeoutMs: 10_000,
          until: (answer) => answer.trim() === 'PONG',
        });
      }
      await execFileAsync('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      // Every node must know every slot's owner before clients that seed from any of them start.
      for (const port of ports) {
        await waitUntil(`cluster state ok on ${port}`, () => cli(port, 'CLUSTER', 'INFO'), {
          timeoutMs: 10_000,
          until: (info) => /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(info),
        });
      }
    } catch (err) {
      await fixture.stop();
      throw err;
    }
    return fixture;
  }

  /** A client of the cluster, for the test to look at keys with (the caller disconnects it). */
  client(): Cluster {
    return new Cluster([{ host: '127.0.0.1', port: this.ports[0] }]);
  }

  /** How many keys each master holds, in port order. */
  async keysPerNode(): Promise<number[]> {
    return Promise.all(this.ports.map(async (port) => Number((await cli(port, 'DBSIZE')).trim())));
  }

  async stop(): Promise<void> {
    const running = this.servers.filter((server) => server.pid && server.exitCode === null);
    await Promise.all(running.map((server) => stopProcess(server.pid!, 'SIGTERM', 'SIGKILL', 5000)));
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function cli(port: number, ...args: string[]): Promise<string> {
  return (await execFileAsync('redis-cli', ['-p', String(port), ...args])).stdout;
}
