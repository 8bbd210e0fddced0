import { ProviderError } from '../providers/provider.port';
import { TASK_BACKOFF_TYPE } from '../queue/queue.constants';

/**
 * Delay before retry `attemptsMade` (1-based): the configured delays in order (the last one repeats), with ±10 %
 * jitter so a burst of failures does not come back as a burst; a provider's Retry-After wins when it is longer.
 */
export function retryDelay(attemptsMade: number, delays: number[], err?: Error, random = Math.random): number {
  const base = delays[Math.min(attemptsMade, delays.length) - 1] ?? delays[delays.length - 1] ?? 30000;
  const jittered = Math.round(base * (0.9 + random() * 0.2));
  const retryAfter = err instanceof ProviderError ? err.retryAfterMs : undefined;
  return retryAfter !== undefined ? Math.max(jittered, retryAfter) : jittered;
}

/** BullMQ's custom backoff hook, bound to the configured delays. */
export function makeBackoffStrategy(delays: number[]) {
  return (attemptsMade: number, type?: string, err?: Error): number => {
    if (type !== TASK_BACKOFF_TYPE) return -1; // unknown type: no retry rather than a wrong delay
    return retryDelay(attemptsMade, delays, err);
  };
}
