/**
 * The floors the submit benchmark is compared with, each a child process:
 *   bare    — a Fastify handler that parses the JSON body and answers 202 (the HTTP floor);
 *   raw     — the same plus what a submit must do at least: one `pg` INSERT and one BullMQ `add` on Redis (the work
 *             floor of QUEUE_BACKEND=redis);
 *   pgraw   — the same INSERT and one BullMQ `add` on BullMQ's Postgres backend, built as the platform builds it
 *             (`PostgresQueueBackend`: `createPostgresBackend`, the `bullmq` schema of the database inserted into;
 *             the work floor of QUEUE_BACKEND=postgres). `prefix` is then the queue's name.
 * Usage: node dist/bench/floor-servers.js <bare|raw|pgraw> <port> <databaseUrl> <redisUrl> <prefix>
 */
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { QueueName } from '../src/queue/queue.constants';
import { redisOptionsFromUrl } from '../src/queue/redis-options';
import { postgresQueues } from './support';

function queueOf(mode: string, databaseUrl: string, redisUrl: string, prefix: string): Queue {
  if (mode === 'pgraw') return postgresQueues(databaseUrl).createQueue(prefix as QueueName);
  return new Queue('tasks', { connection: redisOptionsFromUrl(redisUrl) as never, prefix: `{${prefix}}` });
}

async function main(): Promise<void> {
  const [mode, port, databaseUrl, redisUrl, prefix] = process.argv.slice(2);
  const app = Fastify({ bodyLimit: 1024 * 1024 });
  if (mode === 'bare') {
    app.post('/submit', async (request, reply) => {
      const body = request.body as { text?: string };
      return reply.status(202).send({ id: randomUUID(), status: 'queued', length: body.text?.length ?? 0 });
    });
  } else {
    const pool = new Pool({ connectionString: databaseUrl, max: 10 });
    const queue = queueOf(mode, databaseUrl, redisUrl, prefix);
    app.post('/submit', async (request, reply) => {
      const id = randomUUID();
      const now = new Date();
      await pool.query(
        `INSERT INTO tasks (id, user_id, type, status, priority, input, created_at, updated_at, event_seq)
         VALUES ($1, 'bench', 'subtitle_generation', 'queued', 'medium', $2, $3, $3, 1)`,
        [id, JSON.stringify(request.body), now],
      );
      await queue.add('task.run', { taskId: id }, { jobId: id, priority: 3, removeOnComplete: true });
      return reply.status(202).send({ id, status: 'queued' });
    });
  }
  await app.listen({ port: Number(port), host: '127.0.0.1' });
  process.send?.('ready');
}

void main();
