import { createParser } from 'eventsource-parser';
import { apiErrorOf, authHeaders, type Credentials, type TaskEvent } from './api';

export interface StreamHandlers {
  onEvent: (event: TaskEvent) => void;
  /** Each time the stream (re)opens: events sent while it was closed are not replayed, so re-read what is shown. */
  onOpen?: () => void;
  onState?: (state: 'live' | 'reconnecting' | 'closed') => void;
}

const MAX_RETRY_MS = 15_000;

/**
 * A Server-Sent Events stream over fetch, so the credential goes in a header and never in a URL (EventSource cannot
 * send headers). Reopens with a growing pause after a drop, until `signal` aborts; a 4xx other than 429 ends it.
 */
export function openEventStream(
  path: string,
  credentials: Credentials,
  handlers: StreamHandlers,
  signal: AbortSignal,
): void {
  let retryMs = 1000;
  const run = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        const res = await fetch(path, {
          headers: { ...authHeaders(credentials), accept: 'text/event-stream' },
          signal,
          cache: 'no-store',
        });
        if (res.status === 204) return handlers.onState?.('closed');
        if (!res.ok || !res.body) {
          const error = apiErrorOf(res.status, await res.json().catch(() => undefined));
          if (res.status >= 400 && res.status < 500 && res.status !== 429) throw error;
          throw Object.assign(error, { retry: true });
        }
        retryMs = 1000;
        handlers.onState?.('live');
        handlers.onOpen?.();
        const parser = createParser({
          onEvent(message) {
            if (!message.event?.startsWith('task.')) return;
            try {
              handlers.onEvent(JSON.parse(message.data) as TaskEvent);
            } catch {
              // A message that is not JSON is not an event of ours.
            }
          },
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (!(err as { retry?: boolean }).retry && err instanceof Error && 'status' in err) {
          handlers.onState?.('closed');
          return;
        }
      }
      if (signal.aborted) return;
      handlers.onState?.('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    }
  };
  void run();
}
