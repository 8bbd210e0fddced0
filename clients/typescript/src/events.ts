import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { sleep } from './http';
import { isTerminalEvent, TASK_EVENT_TYPES, type TaskEvent } from './types';

/** Reconnections in a row that bring no event before watching gives up. */
const MAX_RECONNECTS = 5;
/** The server's `retry:` until it sends its own. */
const DEFAULT_RETRY_MS = 2000;

/**
 * Opens the task's stream after the event `lastEventId` (Last-Event-ID). Answers the body, or null when the server
 * says the stream is over (204: the final event was received already). Throws the typed error of any other refusal.
 */
export type OpenStream = (
  lastEventId: number,
  signal: AbortSignal | undefined,
) => Promise<ReadableStream<Uint8Array> | null>;

/**
 * A task's events over `fetch` (Node, or any runtime whose fetch streams): the bearer token or API key goes in a
 * header, and a dropped connection is opened again with Last-Event-ID so no event comes twice. Ends after the
 * terminal event. Events sent while disconnected are not replayed by the server, but the final one always is.
 */
export async function* watchOverFetch(
  open: OpenStream,
  options: { lastEventId?: number; signal?: AbortSignal },
): AsyncGenerator<TaskEvent> {
  let last = options.lastEventId ?? 0;
  let retryMs = DEFAULT_RETRY_MS;
  let quiet = 0;
  for (;;) {
    let stream: ReadableStream<Uint8Array> | null;
    try {
      stream = await open(last, options.signal);
    } catch (err) {
      if (!isNetworkError(err) || options.signal?.aborted || ++quiet > MAX_RECONNECTS) throw err;
      await sleep(retryMs, options.signal);
      continue;
    }
    if (!stream) return;
    const reader = stream.getReader();
    try {
      for await (const message of messages(reader, (ms) => (retryMs = ms))) {
        if (!message.event || !(TASK_EVENT_TYPES as string[]).includes(message.event)) continue;
        const event = JSON.parse(message.data) as TaskEvent;
        if (event.sequence <= last) continue;
        last = event.sequence;
        quiet = 0;
        yield event;
        if (isTerminalEvent(event)) return;
      }
    } catch (err) {
      if (!isNetworkError(err) || options.signal?.aborted) throw err;
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    // The stream ended before the task did (a server restart, a proxy's timeout, a dropped connection): reopen.
    if (++quiet > MAX_RECONNECTS) throw new Error('the event stream keeps closing without sending events');
    await sleep(retryMs, options.signal);
  }
}

async function* messages(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  onRetry: (ms: number) => void,
): AsyncGenerator<EventSourceMessage> {
  const parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => parsed.push(message), onRetry });
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    parser.feed(decoder.decode(value, { stream: true }));
    while (parsed.length) yield parsed.shift()!;
  }
}

/**
 * fetch's own failures (a refused or reset connection: TypeError), as opposed to an answer of the platform. By name,
 * not instanceof: the fetch may come from another realm (a test sandbox, an iframe).
 */
function isNetworkError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Error).name === 'TypeError';
}

/** The part of the browser's EventSource this client uses (declared here: the client builds without the DOM lib). */
export interface EventSourceLike {
  readonly readyState: number;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (message: { data: string }) => void): void;
  close(): void;
}

export interface EventSourceConstructor {
  new (url: string): EventSourceLike;
  readonly CLOSED: number;
}

/** The runtime's EventSource where there is one (browsers; not Node 20). */
export function globalEventSource(): EventSourceConstructor | undefined {
  return (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
}

/** What a browser's EventSource needs: the constructor, and a way to get a URL that carries a stream token. */
export interface EventSourceTransport {
  EventSource: EventSourceConstructor;
  /** A fresh stream URL (POST …/events/token), absolute. */
  streamUrl(): Promise<string>;
}

/**
 * A task's events through the browser's EventSource, which cannot send headers: the URL carries a 5-minute token
 * that opens this task's stream only, never the user's own token. EventSource reconnects by itself with
 * Last-Event-ID; when it gives up (the token expired, a 429), a new token opens a new one, and events already
 * seen are skipped by their sequence.
 */
export async function* watchOverEventSource(
  transport: EventSourceTransport,
  options: { lastEventId?: number; signal?: AbortSignal },
): AsyncGenerator<TaskEvent> {
  let last = options.lastEventId ?? 0;
  const queue = new EventQueue();
  const onAbort = () => queue.fail(options.signal!.reason as Error);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let source: EventSourceLike | undefined;
  let reopened = 0;
  const open = async (): Promise<void> => {
    const es = new transport.EventSource(await transport.streamUrl());
    source = es;
    for (const type of TASK_EVENT_TYPES) {
      es.addEventListener(type, (message) => queue.push(JSON.parse(message.data) as TaskEvent));
    }
    es.onerror = () => {
      if (es.readyState !== transport.EventSource.CLOSED || source !== es) return;
      if (++reopened > MAX_RECONNECTS) return queue.fail(new Error('the event stream was refused; see the task'));
      sleep(DEFAULT_RETRY_MS * reopened, options.signal)
        .then(open)
        .catch((err: Error) => queue.fail(err));
    };
  };
  try {
    await open();
    for (;;) {
      const event = await queue.next();
      if (event.sequence <= last) continue;
      last = event.sequence;
      reopened = 0;
      yield event;
      if (isTerminalEvent(event)) return;
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    source?.close();
    source = undefined;
  }
}

/** Events pushed by callbacks, taken one at a time by the generator. */
class EventQueue {
  private readonly items: TaskEvent[] = [];
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  push(event: TaskEvent): void {
    this.items.push(event);
    this.wake?.();
  }

  fail(error: Error): void {
    this.error ??= error;
    this.wake?.();
  }

  async next(): Promise<TaskEvent> {
    for (;;) {
      if (this.items.length) return this.items.shift()!;
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
