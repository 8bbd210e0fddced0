/**
 * The floors the submit benchmark is compared with, each a child process:
 *   bare  — a Fastify handler that parses the JSON body and answers 202 (the HTTP floor);
 *   raw   — the same plus what a submit must do at least: one `pg` INSERT and one BullMQ `add` (the work floor).
 * Usage: node dist/bench/floor-servers.js <bare|raw> <port> <databaseUrl> <redisUrl> <prefix>
 */
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { redisOptionsFromUrl } from '../src/queue/redis-options';

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
    const queue = new Queue('tasks', { connection: redisOptionsFromUrl(redisUrl) as never, prefix: `{${prefix}}` });
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
