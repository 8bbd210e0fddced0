/**
 * The webhook benchmark's receiver, in a process of its own so that the load generator's work never delays it:
 * answers 204 to every POST and notes when each event arrived. The parent asks over IPC: `{ take: true }` answers
 * every hit so far (and forgets them), `{ count: true }` how many there are.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

interface Hit {
  event: string;
  at: number;
  eventAt: number;
}

/**
 * Loopback addresses it answers on, one server each on the same port: a backlog spread over them is three hosts to
 * the platform's per-host rate (WEBHOOK_HOST_RATE_PER_SECOND), as deliveries to several receivers are.
 */
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

let hits: Hit[] = [];
const handler = (req: IncomingMessage, res: ServerResponse): void => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { event_type: string; timestamp: string };
    hits.push({ event: body.event_type, at, eventAt: Date.parse(body.timestamp) });
    res.writeHead(204).end();
  });
};

function listen(host: string, port: number): Promise<Server> {
  const server = createServer(handler);
  server.keepAliveTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const servers: Server[] = [];
void (async () => {
  const first = await listen(HOSTS[0], 0);
  const { port } = first.address() as AddressInfo;
  servers.push(first, ...(await Promise.all(HOSTS.slice(1).map((host) => listen(host, port)))));
  process.send!({ urls: HOSTS.map((host) => `http://${host}:${port}/hook`) });
})();
process.on('message', (msg: { take?: boolean; count?: boolean; stop?: boolean }) => {
  if (msg.take) {
    process.send!({ hits });
    hits = [];
  } else if (msg.count) {
    process.send!({ count: hits.length });
  } else if (msg.stop) {
    for (const server of servers) server.close();
    process.exit(0);
  }
});
