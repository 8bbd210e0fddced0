import { parseRetryAfter } from './errors';

/** How 429 and 503 answers are retried. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3; 0 turns retrying off). */
  retries?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown at once (default 60 000 ms). */
  maxDelayMs?: number;
  /** Called before each wait, e.g. to tell a user why nothing happens. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  status: number;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  url: string;
}

/** The wait before retrying a 503 that names no Retry-After: 1 s, 2 s, 4 s… */
const BACKOFF_MS = 1000;

/**
 * A fetch that retries 429 and 503 answers after the Retry-After they carry. Both mean the platform did nothing with
 * the request (a rate limit or a cap refused it before it ran; a 503 frees an Idempotency-Key), so retrying is safe
 * for every method. A 429 without Retry-After (a task quota) is not retried: waiting a moment would not help.
 */
export function retryingFetch(
  fetchImpl: (input: Request) => Promise<Response>,
  options: RetryOptions = {},
): (input: Request) => Promise<Response> {
  const retries = options.retries ?? 3;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  return async (request) => {
    for (let attempt = 0; ; attempt++) {
      // A request's body can be read once: each attempt but the last sends a copy.
      const response = await fetchImpl(attempt < retries ? request.clone() : request);
      const delayMs = retryDelay(response, attempt);
      if (attempt >= retries || delayMs === undefined || delayMs > maxDelayMs) return response;
      await response.body?.cancel();
      options.onRetry?.({ status: response.status, attempt: attempt + 1, delayMs, url: request.url });
      await sleep(delayMs, request.signal);
    }
  };
}

function retryDelay(response: Response, attempt: number): number | undefined {
  if (response.status !== 429 && response.status !== 503) return undefined;
  const seconds = parseRetryAfter(response.headers.get('retry-after'));
  if (seconds !== undefined) return seconds * 1000;
  return response.status === 503 ? BACKOFF_MS * 2 ** attempt : undefined;
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
