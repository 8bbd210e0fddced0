import Fastify, { type FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import pino from 'pino';
import { registerRequestLog } from './request-log';

describe('registerRequestLog', () => {
  let app: FastifyInstance;
  let lines: Record<string, unknown>[];

  const start = async (level: string): Promise<void> => {
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    app = Fastify({ genReqId: () => 'req-1' });
    registerRequestLog(app, pino({ level }, sink));
    app.get('/api/v1/media/tasks/:id/events', async () => ({ ok: true }));
    app.get('/boom', async (_req, reply) => reply.status(503).send({ down: true }));
    app.get('/health/live', async () => ({ status: 'ok' }));
    app.get('/api/v1/media/health', async () => ({ status: 'ok' }));
    await app.ready();
  };
  afterEach(async () => {
    await app.close();
  });

  it('logs each answered request once, with its id, method, masked URL, status and time taken', async () => {
    await start('info');
    const res = await app.inject({ method: 'GET', url: '/api/v1/media/tasks/t1/events?token=secret-jwt' });
    expect(res.statusCode).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: 'request completed',
      request_id: 'req-1',
      req: { method: 'GET', url: '/api/v1/media/tasks/t1/events?token=[redacted]' },
      res: { statusCode: 200 },
    });
    expect(typeof lines[0].responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret-jwt');
  });

  it('logs an answer of 500 or more at error', async () => {
    await start('info');
    await app.inject({ method: 'GET', url: '/boom' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, msg: 'request errored', res: { statusCode: 503 } });
  });

  it('leaves health checks out, and writes nothing below its level', async () => {
    await start('info');
    await app.inject({ method: 'GET', url: '/health/live' });
    await app.inject({ method: 'GET', url: '/api/v1/media/health' });
    expect(lines).toEqual([]);
    await app.close();

    await start('warn');
    await app.inject({ method: 'GET', url: '/api/v1/media/tasks/t1/events' });
    expect(lines).toEqual([]);
    await app.inject({ method: 'GET', url: '/boom' });
    expect(lines).toHaveLength(1);
  });
});
