import type { Params } from 'nestjs-pino';
import pino, { type LoggerOptions } from 'pino';
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
 * The process's one pino logger: Nest's Logger writes through it (nestjs-pino), and so does the request log
 * (request-log.ts). nestjs-pino's request middleware is not mounted: it binds each request's logger in an
 * AsyncLocalStorage context, and once one has run, Node (20) pays an async hook on every promise of the process for
 * good, a sixth of an API process's CPU per submit. The request log is a Fastify hook instead, with the request id on
 * each line; logs written while a request is handled carry its id where they name it (the error filter does).
 */
export function loggerOptions(config: AppConfig): Params {
  return { forRoutes: [], pinoHttp: { logger: pino(rootLoggerOptions(config)) } };
}

/** Level, redaction and (LOG_PRETTY) the pretty transport of the process's logger. */
export function rootLoggerOptions(config: AppConfig): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    transport: config.logPretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  };
}
