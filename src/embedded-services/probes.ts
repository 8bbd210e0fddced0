import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Client } from 'pg';

/**
 * What a service's address said when asked: it `answers`; it is `silent` (nothing listens, or it never replied in
 * time); or something there `rejects` the platform (wrong password, unknown user…), which no fallback should hide.
 */
export type Probe = { state: 'answers' } | { state: 'silent'; reason: string } | { state: 'rejects'; reason: string };

export const PROBE_TIMEOUT_MS = 2000;

/** `host:port` of a service URL, never its user or password. */
export function displayAddress(url: string, defaultPort: number): string {
  const parsed = new URL(url);
  return `${parsed.hostname || 'localhost'}:${parsed.port || defaultPort}`;
}

// Connection-level failures: nothing (that speaks the protocol) is there.
const SILENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

function silentOrRejects(err: unknown): Probe {
  const { code, message } = err as { code?: string; message?: string };
  const reason = message || String(err);
  if ((code && SILENT_CODES.has(code)) || /timeout|timed out|ECONNREFUSED|Connection is closed/i.test(reason)) {
    return { state: 'silent', reason };
  }
  return { state: 'rejects', reason };
}

/** Connects to the database the URL names; a database that does not exist yet still counts (boot creates it). */
export async function probePostgres(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { state: 'answers' };
  } catch (err) {
    if ((err as { code?: string }).code === '3D000') return { state: 'answers' };
    return silentOrRejects(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Sends AUTH (when the URL has a password) and PING over one connection, in Redis's own protocol: a client library
 * would retry, queue or keep timers alive, where one plain question is all this needs.
 */
export function probeRedis(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const port = Number(parsed.port || 6379);
  const tls = parsed.protocol === 'rediss:';
  const [username, password] = [parsed.username, parsed.password].map(decodeURIComponent);
  const command = (...args: string[]) =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const auth = password ? command('AUTH', ...(username ? [username] : []), password) : '';
  return new Promise((resolve) => {
    const socket = tls ? tlsConnect({ host, port, servername: host }) : netConnect({ host, port });
    let replies = '';
    const done = (probe: Probe) => {
      socket.destroy();
      resolve(probe);
    };
    socket.setTimeout(timeoutMs, () => done({ state: 'silent', reason: `no answer within ${timeoutMs} ms` }));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write(auth + command('PING')));
    socket.on('data', (chunk: Buffer) => {
      replies += chunk.toString('utf8');
      const error = /^-(.*)\r\n/m.exec(replies);
      if (error) done({ state: 'rejects', reason: error[1] });
      else if (replies.includes('+PONG\r\n')) done({ state: 'answers' });
    });
    socket.once('error', (err) => done(silentOrRejects(err)));
    socket.once('close', () => done({ state: 'silent', reason: 'the connection was closed without an answer' }));
  });
}
