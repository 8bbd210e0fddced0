import type { FastifyInstance } from 'fastify';
import type { Level, Logger } from 'pino';
import { redactUrl } from './logger.options';

/** Health checks are not logged: probes call them every few seconds. */
const UNLOGGED = /^\/(?:api\/v1\/media\/)?health(?:[/?]|$)/;

/**
 * One line per answered request, once it is sent: its id (X-Request-Id, the same as in the answer's header and in
 * an error body), method, URL with credentials masked, status and time taken; an answer of 500 or more at `error`,
 * the rest at `info`. A Fastify hook, so that no AsyncLocalStorage context is entered (logger.options.ts says why);
 * at a level that writes none of them, a request costs one level check.
 */
export function registerRequestLog(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onResponse', (request, reply, done) => {
    const statusCode = reply.statusCode;
    const level: Level = statusCode >= 500 ? 'error' : 'info';
    if (logger.isLevelEnabled(level) && !UNLOGGED.test(request.url)) {
      logger[level](
        {
          request_id: request.id,
          req: { method: request.method, url: redactUrl(request.url) },
          res: { statusCode },
          responseTime: Math.round(reply.elapsedTime * 10) / 10,
        },
        statusCode >= 500 ? 'request errored' : 'request completed',
      );
    }
    done();
  });
}
