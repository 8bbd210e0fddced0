import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { waitUntil } from './wait';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
  at: number;
}

/** How the receiver answers one request (the n-th it has seen, from 1). */
export type Behaviour = (req: Received, n: number, res: ServerResponse) => void | Promise<void>;

/** A real HTTP server on loopback that records every webhook it gets and answers as the test says. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  private behaviour: Behaviour = (_req, _n, res) => void res.writeHead(204).end();
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Listening on `host`, a loopback address (another one than 127.0.0.1 makes another destination host). */
  static async start(host = '127.0.0.1'): Promise<WebhookReceiver> {
    const holder: { receiver?: WebhookReceiver } = {};
    const server = createServer((req, res) => void holder.receiver!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    holder.receiver = new WebhookReceiver(server, `http://${host}:${(server.address() as AddressInfo).port}`);
    return holder.receiver;
  }

  answer(behaviour: Behaviour): this {
    this.behaviour = behaviour;
    return this;
  }

  /** Requests received on `path` (default: any). */
  on(path?: string): Received[] {
    return this.received.filter((r) => path === undefined || r.path === path);
  }

  async waitFor(predicate: (all: Received[]) => boolean, timeoutMs = 10000): Promise<Received[]> {
    await waitUntil('the webhooks awaited', () => predicate(this.received), { timeoutMs }).catch(() => {
      throw new Error(`receiver: condition not met; got ${this.received.map((r) => r.json?.event_type).join(', ')}`);
    });
    return this.received;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let json: any;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const received: Received = { path: req.url ?? '/', headers: req.headers, body, json, at: Date.now() };
    this.received.push(received);
    await this.behaviour(received, this.received.length, res);
  }
}
