/**
 * An open-loop client sending requests at an even pace: request i is due at start + i / rate, whatever happened to
 * the ones before it, over a fixed set of kept-alive sockets. Its latency is measured from when it was due, not from
 * when a socket took it, so the time it waited behind a slow answer (for a free socket, or in the server) is counted:
 * the figures are free of coordinated omission, and a server that stalls cannot hide it by slowing the client.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface PacedTarget {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface PacedResult {
  /** Answers per second over the run (ideally the rate asked for). */
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Non-2xx answers and failed requests. */
  errors: number;
}

/** Sends `rate` requests a second for `seconds` over `sockets` kept-alive sockets; latencies in ms (0.1 ms steps). */
export async function paced(target: PacedTarget, rate: number, seconds: number, sockets: number): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const url = new URL(target.url);
  const body = Buffer.from(target.body);
  const headers = { 'content-type': 'application/json', 'content-length': String(body.length), ...target.headers };
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const latencies = new Float64Array(total);
  let errors = 0;
  let done = 0;
  let sent = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const send = (due: number, i: number): void => {
      const finish = (ok: boolean): void => {
        latencies[i] = performance.now() - due;
        if (!ok) errors++;
        if (++done === total) resolve();
      };
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => finish(res.statusCode !== undefined && res.statusCode < 300));
          res.on('error', () => finish(false));
        },
      );
      req.on('error', () => finish(false));
      req.end(body);
    };
    // Wakes at the next request's due time and sends every request due by then (a late timer sends the ones it
    // overslept at once; their lateness counts in their latency).
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        send(start + sent * interval, sent);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(total - 1, Math.floor(q * total))] * 10) / 10;
  return { rps: Math.round(total / elapsed), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1), errors };
}
