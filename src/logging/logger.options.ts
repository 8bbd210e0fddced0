import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import { AppConfig } from '../config/app-config';

/** Paths whose values are secrets: pino replaces them before anything is written. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'req.query.token',
  'req.query.sig',
  '*.webhook_secret',
  '*.webhookSecret',
  // A flow step's signing secret (notify), a flow's, and the headers an http step sends.
  '*.secret',
  '*.headers.authorization',
  '*.password',
  '*.apiKey',
  '*.api_key',
];

/**
 * Query parameters that carry credentials, masked in logged URLs: a task-events token opens an EventSource, and a
 * `sig` opens a file link or answers as a provider callback until it expires.
 */
const SECRET_QUERY_PARAMS = new Set(['token', 'access_token', 'sig']);

/** The URL as it may be logged: the values of credential query parameters replaced, however their names are encoded. */
export function redactUrl(url: string | undefined): string | undefined {
  const q = url?.indexOf('?') ?? -1;
  if (!url || q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((part) => {
      const name = part.split('=', 1)[0];
      return SECRET_QUERY_PARAMS.has(decodeName(name).toLowerCase()) ? `${name}=[redacted]` : part;
    });
  return `${url.slice(0, q + 1)}${params.join('&')}`;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/**
 * Health checks skip the request logger (they are not logged anyway): binding it runs the rest of the request in an
 * AsyncLocalStorage context, and once one has run, Node (20) pays an async hook on every promise of the process for
 * good. A worker answers nothing but health checks, so this keeps that cost (a twentieth of its CPU) out of it.
 */
const UNLOGGED_ROUTES = ['health', 'health/*path', 'api/v1/media/health'].map((path) => ({
  path,
  method: RequestMethod.ALL,
}));

export function loggerOptions(config: AppConfig): Params {
  return {
    exclude: UNLOGGED_ROUTES,
    pinoHttp: {
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Fastify has already chosen the id (from X-Request-Id or a new UUID); log under the same one.
      genReqId: (req: IncomingMessage) => (req as IncomingMessage & { id?: string }).id ?? randomUUID(),
      customAttributeKeys: { reqId: 'request_id' },
      autoLogging: { ignore: (req: IncomingMessage) => req.url?.startsWith('/health') ?? false },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
        }),
      },
      transport: config.logPretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
    },
  };
}
