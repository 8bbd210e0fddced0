import { Injectable } from '@nestjs/common';
import { errors, request } from 'undici';
import { AppConfig } from '../config/app-config';
import { UrlGuard } from '../security/url-guard';

/** The response bytes read from a receiver, at most; the rest is not read. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** What an attempt keeps of the answer, for the delivery's log. */
const EXCERPT_CHARS = 512;

export interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseExcerpt: string | null;
  /** From the receiver's Retry-After, when it sent one. */
  retryAfterMs?: number;
  /** 410 Gone: the receiver wants no more of this delivery. */
  gone: boolean;
}

/**
 * One delivery attempt over HTTP: through the URL guard's dispatcher (the host resolved once, its address checked
 * and connected to), no redirects followed (a 3xx is a failure), a deadline on the whole exchange, and at most
 * 64 KiB of the answer read.
 */
@Injectable()
export class WebhookSender {
  constructor(
    private readonly config: AppConfig,
    private readonly guard: UrlGuard,
  ) {}

  async send(url: string, headers: Record<string, string>, body: string): Promise<AttemptOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const problem = this.guard.problem(url);
    if (problem) return failure(null, elapsed(), `webhook_url ${problem}`);
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'media-tasks-webhooks/1', ...headers },
        body,
        dispatcher: this.guard.dispatcher(),
        signal: AbortSignal.timeout(this.config.webhook.timeoutMs),
      });
      const excerpt = await readCapped(res.body);
      const status = res.statusCode;
      const ok = status >= 200 && status < 300;
      return {
        ok,
        statusCode: status,
        durationMs: elapsed(),
        error: ok ? null : status >= 300 && status < 400 ? `redirect (${status}) not followed` : `HTTP ${status}`,
        responseExcerpt: excerpt,
        retryAfterMs: ok ? undefined : retryAfterMs(res.headers['retry-after']),
        gone: status === 410,
      };
    } catch (err) {
      return failure(null, elapsed(), describe(err, this.config.webhook.timeoutMs));
    }
  }
}

function failure(statusCode: number | null, durationMs: number, error: string): AttemptOutcome {
  return { ok: false, statusCode, durationMs, error, responseExcerpt: null, gone: false };
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_RESPONSE_BYTES) {
      body.destroy(); // the rest is never read
      break;
    }
  }
  if (size === 0) return null;
  return Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8').slice(0, EXCERPT_CHARS);
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  if (e.name === 'TimeoutError' || e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError) {
    return `no answer within ${timeoutMs} ms`;
  }
  if (e.name === 'UrlGuardError') return e.message;
  if (e.cause?.name === 'UrlGuardError') return e.cause.message;
  const code = e.code ?? e.cause?.code;
  return code ? `${code}: ${e.cause?.message ?? e.message}` : e.message;
}
