import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Dispatcher, errors, request } from 'undici';
import { ProviderError, ProviderErrorCode } from './provider.port';

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A string/Buffer/stream is sent as is (a stream without being held in memory); FormData as multipart. */
  body?: string | Buffer | Readable | FormData;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Largest response body accepted (bytes). */
  maxBytes?: number;
  /** The URL guard's dispatcher, for requests made on a user's behalf. */
  dispatcher?: Dispatcher;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json<T = unknown>(): T;
  text(): string;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The adapters' one HTTP call: a deadline on the whole exchange, the task's abort signal, a cap on the body, and
 * transport failures turned into transient ProviderErrors. Status codes are left to the adapter (see
 * `classifyStatus`), since each vendor words its errors differently.
 */
export async function providerRequest(provider: string, call: HttpCall): Promise<HttpResponse> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
  let sendBody = call.body;
  let sendHeaders = call.headers;
  if (sendBody instanceof FormData) {
    // Node's global FormData belongs to its bundled undici, which this undici's request() cannot send: encode the
    // multipart bytes here (the boundary comes with the content type).
    const encoded = new Response(sendBody);
    sendBody = Buffer.from(await encoded.arrayBuffer());
    sendHeaders = { ...sendHeaders, 'content-type': encoded.headers.get('content-type')! };
  }
  try {
    const res = await request(call.url, {
      method: call.method,
      headers: sendHeaders,
      body: sendBody as never,
      signal,
      dispatcher: call.dispatcher,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    const max = call.maxBytes ?? DEFAULT_MAX_BYTES;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > max) {
        res.body.destroy();
        throw ProviderError.permanent(ProviderErrorCode.BadResponse, `${provider} answered more than ${max} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks);
    const headers = flatHeaders(res.headers);
    return {
      status: res.statusCode,
      headers,
      body,
      text: () => body.toString('utf8'),
      json: <T>() => {
        try {
          return JSON.parse(body.toString('utf8')) as T;
        } catch {
          throw ProviderError.transient(
            ProviderErrorCode.BadResponse,
            `${provider} answered ${res.statusCode} with a body that is not JSON`,
          );
        }
      },
    };
  } catch (err) {
    throw transportFailure(provider, call, timeout, err);
  }
}

export interface DownloadedFile {
  status: number;
  headers: Record<string, string>;
  /** Bytes received (0 for a non-2xx answer). */
  size: number;
  /** Hex SHA-256 of the bytes received. */
  sha256: string;
  /** The body, when it was small enough to keep in memory (see DownloadTarget); else it is in the file. */
  data?: Buffer;
}

export interface DownloadTarget {
  /** The file a body is streamed into; asked for only when one is needed. */
  file?: () => Promise<string>;
  /**
   * Instead of a file: takes the body as it arrives (already counted and hashed; it fails past `maxBytes`) and
   * resolves once it has consumed it all.
   */
  sink?: (body: Readable, headers: Record<string, string>) => Promise<void>;
  /** A body announced (Content-Length) at most this long is kept in memory instead: no file for small outputs. */
  inMemoryUpTo?: number;
}

/**
 * A GET whose 2xx body is streamed into a file (created, never held in memory) or a sink, counted and hashed on the way, and
 * cut off as soon as it passes `maxBytes` (a permanent `provider_bad_response`, the partial file removed). A non-2xx
 * answer writes nothing: its status and headers come back for the caller to classify. Same deadline, abort signal,
 * guard and failure kinds as providerRequest.
 */
export async function providerDownload(
  provider: string,
  call: Omit<HttpCall, 'method' | 'body'>,
  target: string | DownloadTarget,
): Promise<DownloadedFile> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
  const max = call.maxBytes ?? DEFAULT_MAX_BYTES;
  const tooLarge = () =>
    ProviderError.permanent(ProviderErrorCode.BadResponse, `${provider} answered more than ${max} bytes`);
  let file: string | undefined;
  try {
    const res = await request(call.url, { method: 'GET', headers: call.headers, signal, dispatcher: call.dispatcher });
    const headers = flatHeaders(res.headers);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump().catch(() => undefined); // an error page: read a little of it, then let it go
      return { status: res.statusCode, headers, size: 0, sha256: '' };
    }
    const declared = headers['content-length'] === undefined ? NaN : Number(headers['content-length']);
    if (declared > max) {
      await res.body.dump({ limit: 0 }).catch(() => undefined);
      throw tooLarge();
    }
    const hash = createHash('sha256');
    let size = 0;
    const count = (chunk: Buffer): ProviderError | null => {
      size += chunk.length;
      if (size > max) return tooLarge();
      hash.update(chunk);
      return null;
    };
    if (typeof target !== 'string' && declared <= (target.inMemoryUpTo ?? -1)) {
      // undici holds the server to its Content-Length, so this stays as small as announced.
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) {
        const problem = count(chunk as Buffer);
        if (problem) throw problem;
        chunks.push(chunk as Buffer);
      }
      return { status: res.statusCode, headers, size, sha256: hash.digest('hex'), data: Buffer.concat(chunks) };
    }
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        const problem = count(chunk);
        done(problem, problem ? undefined : chunk);
      },
    });
    if (typeof target !== 'string' && target.sink) {
      const counted = res.body.pipe(counter);
      res.body.once('error', (err) => counted.destroy(err));
      try {
        await target.sink(counted, headers);
      } finally {
        res.body.destroy(); // a sink that stopped early leaves no connection half read
      }
      return { status: res.statusCode, headers, size, sha256: hash.digest('hex') };
    }
    file = typeof target === 'string' ? target : await target.file!();
    await pipeline(res.body, counter, createWriteStream(file, { flags: 'wx' }));
    return { status: res.statusCode, headers, size, sha256: hash.digest('hex') };
  } catch (err) {
    if (file && (err as { code?: string }).code !== 'EEXIST') await rm(file, { force: true }).catch(() => undefined);
    throw transportFailure(provider, call, timeout, err);
  }
}

/** A failed exchange as the adapters report it: our own errors as they are, transport failures transient. */
function transportFailure(
  provider: string,
  call: { signal?: AbortSignal; timeoutMs: number },
  timeout: AbortSignal,
  err: unknown,
): unknown {
  if (err instanceof ProviderError) return err;
  if (call.signal?.aborted) return err; // cancel or task timeout: the processor knows which
  const guardRefusal = findGuardError(err);
  if (guardRefusal) return ProviderError.permanent(ProviderErrorCode.InputUnreachable, guardRefusal.message);
  if (timeout.aborted || err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
    return ProviderError.transient(ProviderErrorCode.Timeout, `${provider} did not answer within ${call.timeoutMs} ms`);
  }
  const code = (err as { code?: string }).code ?? (err as Error).name;
  return ProviderError.transient(ProviderErrorCode.Network, `${provider} unreachable (${code})`);
}

function flatHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return headers;
}

function findGuardError(err: unknown): Error | undefined {
  for (let e = err as { name?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.name === 'UrlGuardError') return e as Error;
  }
  return undefined;
}

/** Seconds (or an HTTP date) from a Retry-After header, in ms. */
export function retryAfterMs(headers: Record<string, string>): number | undefined {
  const value = headers['retry-after'];
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * The common classification of a non-2xx answer (DESIGN decision 7): 429 and 5xx (and 408) are transient, with
 * the provider's Retry-After; 401/403 are auth failures; other 4xx are the request's fault. Adapters pass the
 * vendor's own message and may map specific codes (content policy) first.
 */
export function classifyStatus(
  provider: string,
  res: Pick<HttpResponse, 'status' | 'headers'>,
  message: string,
): ProviderError {
  const detail = `${provider} answered ${res.status}: ${message}`.slice(0, 500);
  if (res.status === 429) {
    return ProviderError.transient(ProviderErrorCode.RateLimited, detail, retryAfterMs(res.headers), res.status);
  }
  if (res.status === 408 || res.status >= 500) {
    return ProviderError.transient(ProviderErrorCode.Unavailable, detail, retryAfterMs(res.headers), res.status);
  }
  if (res.status === 401 || res.status === 403)
    return ProviderError.permanent(ProviderErrorCode.AuthFailed, detail, res.status);
  if (res.status === 404) return ProviderError.permanent(ProviderErrorCode.NotFound, detail, res.status);
  return ProviderError.permanent(ProviderErrorCode.InvalidRequest, detail, res.status);
}
