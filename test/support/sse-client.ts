import { request as httpRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** A Server-Sent Events client over node:http that keeps every frame, comment and the end of the stream. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: { text: string; at: number }[] = [];
  readonly retries: number[] = [];
  body = '';
  ended = false;
  private buffer = '';
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly res: IncomingMessage,
    private readonly destroy: () => void,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.body += chunk;
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\n\n')) >= 0) {
        this.parse(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 2);
      }
      this.notify();
    });
    res.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  static open(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${baseUrl}${path}`, { headers: { accept: 'text/event-stream', ...headers } });
      req.on('response', (res) => resolve(new SseClient(res, () => req.destroy())));
      req.on('error', reject);
      req.end();
    });
  }

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  get headers(): IncomingHttpHeaders {
    return this.res.headers;
  }

  /** The JSON bodies of the events received, in order. */
  get payloads(): any[] {
    return this.events.map((e) => JSON.parse(e.data));
  }

  /** Waits (bounded) until `predicate` holds on what has arrived. */
  async until(predicate: (client: SseClient) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE: never saw ${what}; received so far:\n${this.body}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  untilEnded(timeoutMs = 5000): Promise<void> {
    return this.until((c) => c.ended, 'the end of the stream', timeoutMs);
  }

  close(): void {
    this.destroy();
  }

  private parse(block: string): void {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push({ text: line.slice(1).trim(), at: Date.now() });
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
    }
    if (fields.retry !== undefined) this.retries.push(Number(fields.retry));
    if (fields.data !== undefined)
      this.events.push({ id: fields.id, event: fields.event ?? 'message', data: fields.data });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
