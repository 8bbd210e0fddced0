/**
 * The webhook benchmark's receiver, in a process of its own so that the load generator's work never delays it:
 * answers 204 to every POST and notes when each event arrived. The parent asks over IPC: `{ take: true }` answers
 * every hit so far (and forgets them), `{ count: true }` how many there are.
 */
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';

interface Hit {
  event: string;
  at: number;
  eventAt: number;
}

let hits: Hit[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { event_type: string; timestamp: string };
    hits.push({ event: body.event_type, at, eventAt: Date.parse(body.timestamp) });
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.send!({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` });
});
process.on('message', (msg: { take?: boolean; count?: boolean; stop?: boolean }) => {
  if (msg.take) {
    process.send!({ hits });
    hits = [];
  } else if (msg.count) {
    process.send!({ count: hits.length });
  } else if (msg.stop) {
    server.close();
    process.exit(0);
  }
});
