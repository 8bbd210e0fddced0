import { RouteConfig } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainException, ErrorCode } from '../../common/domain-exception';

/** Route config flag of the inbound hook route (app.factory.ts gives it the body handling below). */
export const HOOK_BODY = 'hookBody';

/** The body of an inbound hook as received: its exact bytes (for signatures) and what they parse to. */
export interface HookBody {
  raw: Buffer;
  /** JSON: the parsed value; form-urlencoded: an object of its fields; text: the string; empty: null. */
  value: unknown;
}

export type HookRequest = FastifyRequest & { hookBody?: HookBody };

/** The route reads its body as hookBody (raw bytes and parsed value) instead of Fastify's parsers. */
export function HookBodyRoute(): MethodDecorator {
  return RouteConfig({ [HOOK_BODY]: true });
}

/**
 * Gives the routes marked HookBodyRoute() a body of their own: read whole (at most `maxBytes`, else 413 naming
 * HOOK_MAX_BYTES), kept as bytes for the signature check, parsed by its content type (JSON, form-urlencoded, text;
 * others 415). Fastify's parsers never see it: the request goes on as one without a body. Call before routes are added.
 */
export function registerHookBodies(fastify: FastifyInstance, maxBytes: number): void {
  fastify.addHook('onRoute', (route) => {
    if (!(route.config as Record<string, unknown> | undefined)?.[HOOK_BODY]) return;
    route.bodyLimit = maxBytes;
    const own = async (request: FastifyRequest, _reply: unknown, payload: NodeJS.ReadableStream) => {
      const raw = await readAll(request, payload, maxBytes);
      (request as HookRequest).hookBody = { raw, value: parse(raw, request.headers['content-type']) };
      // Nothing left for Fastify to parse.
      delete request.raw.headers['content-type'];
      delete request.raw.headers['transfer-encoding'];
      request.raw.headers['content-length'] = '0';
    };
    const existing = route.preParsing;
    route.preParsing = [...(Array.isArray(existing) ? existing : existing ? [existing] : []), own];
  });
}

function tooLarge(maxBytes: number): DomainException {
  return new DomainException(ErrorCode.PayloadTooLarge, `hook body is larger than HOOK_MAX_BYTES (${maxBytes} bytes)`, {
    limit_bytes: maxBytes,
  });
}

async function readAll(request: FastifyRequest, payload: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, size);
}

function unsupported(type: string): DomainException {
  return new DomainException(
    ErrorCode.UnsupportedMediaType,
    `hook bodies are JSON, application/x-www-form-urlencoded or text; not ${type}`,
  );
}

function parse(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return null;
  const type = (contentType ?? 'text/plain').split(';')[0].trim().toLowerCase();
  const text = raw.toString('utf8');
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new DomainException(ErrorCode.ValidationFailed, `body: malformed JSON: ${(err as Error).message}`, {
        errors: [{ field: 'body', message: 'body: malformed JSON' }],
      });
    }
  }
  if (type === 'application/x-www-form-urlencoded') {
    const fields: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(text)) {
      const held = fields[key];
      fields[key] = held === undefined ? value : Array.isArray(held) ? [...held, value] : [held, value];
    }
    return fields;
  }
  if (type.startsWith('text/')) return text;
  throw unsupported(type);
}
