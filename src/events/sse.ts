import type { TaskEventPayload } from './event-payload';

/** How long a browser's EventSource waits before reconnecting after the connection drops. */
export const SSE_RETRY_MS = 2000;

export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // nginx buffers proxied responses unless told not to, which would hold events back.
  'x-accel-buffering': 'no',
} as const;

/** A comment line: clients ignore it, proxies and load balancers see a live connection. */
export const SSE_HEARTBEAT = ': heartbeat\n\n';

export function sseRetry(ms = SSE_RETRY_MS): string {
  return `retry: ${ms}\n\n`;
}

/**
 * One event frame; its `data` is the webhook body (JSON has no raw newlines, so one `data:` line holds it). Its `id`
 * is the task's sequence, left out (`id: false`) where the frames are of many tasks.
 */
export function sseEvent(payload: TaskEventPayload, opts: { id?: boolean } = {}): string {
  const frame = `event: ${payload.event_type}\ndata: ${JSON.stringify(payload)}\n\n`;
  return opts.id === false ? frame : `id: ${payload.sequence}\n${frame}`;
}

/** The sequence a reconnecting client last received (`Last-Event-ID`); 0 when absent or not a sequence. */
export function parseLastEventId(value: string | undefined): number {
  if (value === undefined || !/^\s*\d{1,15}\s*$/.test(value)) return 0;
  return Number(value);
}
