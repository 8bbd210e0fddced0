/**
 * The floor of a worker's memory, in a child process of its own: what any worker of this design holds at least —
 * Fastify listening, a `pg` pool with a connection open and a BullMQ Worker on Redis — and nothing of the platform.
 * Once connected it sends 'ready' to its parent; on 'go' it drains the queue `prefix` of no-op jobs at `concurrency`
 * and sends 'done' after `count` of them.
 * Usage (forked): node dist/bench/memory-floor.js <databaseUrl> <redisUrl> <prefix> <concurrency> <count>
 */
import { Worker } from 'bullmq';
import Fastify from 'fastify';
import { Pool } from 'pg';
import { redisOptionsFromUrl } from '../src/queue/redis-options';

async function main(): Promise<void> {
  const [databaseUrl, redisUrl, prefix, concurrency, count] = process.argv.slice(2);
  const app = Fastify();
  app.get('/health/live', async () => ({ status: 'ok' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const pool = new Pool({ connectionString: databaseUrl, max: 10 });
  await pool.query('SELECT 1');
  let done = 0;
  process.on('message', (message) => {
    if (message !== 'go') return;
    const worker = new Worker('raw', async () => undefined, {
      connection: redisOptionsFromUrl(redisUrl) as never,
      prefix: `{${prefix}}`,
      concurrency: Number(concurrency),
    });
    worker.on('completed', () => {
      if (++done === Number(count)) process.send!('done');
    });
  });
  process.send!('ready');
}

main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
