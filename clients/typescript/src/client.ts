import createClient, { type Client, type Middleware } from 'openapi-fetch';
import { errorFromResponse, TimeoutError } from './errors';
import { globalEventSource, watchOverEventSource, watchOverFetch } from './events';
import type { paths } from './generated/openapi';
import { retryingFetch, type RetryOptions } from './http';
import {
  CREATE_PATHS,
  isTerminalEvent,
  taskTypeOf,
  type QueueStats,
  type ResponseBody,
  type Statistics,
  type Task,
  type TaskEvent,
  type TaskInput,
  type TaskKind,
  type TaskListQuery,
  type TaskPage,
  type TaskResult,
} from './types';
import { verifyWebhook } from './webhooks';

export interface MediaTasksOptions {
  /** Where the platform answers, e.g. `http://localhost:3000`. */
  baseUrl: string;
  /** A bearer token (JWT), or a function answering a fresh one for each request. */
  token?: string | (() => string | Promise<string>);
  /** An API key (`mt_…`), sent as X-API-Key; a token wins when both are given. */
  apiKey?: string;
  /** How 429 and 503 answers are retried (after their Retry-After). */
  retry?: RetryOptions;
  /** A fetch of your own (tests, proxies); default globalThis.fetch. */
  fetch?: (input: Request) => Promise<Response>;
  /**
   * How tasks.watch listens: `fetch` (credentials in headers) or `eventsource` (the browser's EventSource with a
   * stream token in the URL). Default: `eventsource` where the runtime has EventSource and a `window`, else `fetch`.
   */
  events?: 'fetch' | 'eventsource';
}

export interface CreateOptions {
  /** The same key with the same request answers the first task again and creates nothing (kept 24 h). */
  idempotencyKey?: string;
  /** Wait for the task to finish (over its live events) and answer it finished; `timeout` in ms. */
  wait?: boolean | WaitOptions;
  signal?: AbortSignal;
}

export interface WatchOptions {
  /** Skip events up to this sequence (they were seen already). */
  lastEventId?: number;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this many ms with a TimeoutError (the task goes on). Default: no limit. */
  timeout?: number;
  /** Each event as it comes, e.g. to show progress. */
  onEvent?: (event: TaskEvent) => void;
  signal?: AbortSignal;
}

export type TaskEventsToken = ResponseBody<'/api/v1/media/tasks/{id}/events/token', 'post', 201>;

/** openapi-fetch's answer, as every call of the hand-written layer reads it. */
interface FetchAnswer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful answer, or the typed error of a failed one. */
async function unwrap<T>(call: Promise<FetchAnswer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw errorFromResponse(response, error);
  return data as T;
}

/**
 * The media task platform's client: `tasks` for what every integrator does, `webhooks.verify` for the receiving end,
 * and `api`, the generated client, for any other route of the document.
 */
export class MediaTasks {
  /** The generated client (openapi-fetch over the document's paths), with authentication and retries. */
  readonly api: Client<paths>;
  readonly tasks: Tasks;
  readonly webhooks = { verify: verifyWebhook };
  readonly baseUrl: string;

  constructor(options: MediaTasksOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));
    this.api = createClient<paths>({ baseUrl: this.baseUrl, fetch: retryingFetch(baseFetch, options.retry) });
    this.api.use(authentication(options));
    const inBrowser = globalEventSource() !== undefined && 'window' in globalThis;
    const events = options.events ?? (inBrowser ? 'eventsource' : 'fetch');
    this.tasks = new Tasks(this.api, this.baseUrl, events);
  }

  /** Success rate, mean duration by type, cost by provider, queued by priority, provider health. */
  statistics(query: { scope?: 'own' | 'all' } = {}): Promise<Statistics> {
    return unwrap(this.api.GET('/api/v1/media/statistics', { params: { query } }));
  }

  /** Counts per queue (an admin, or an API key with queue:read). */
  queueStats(): Promise<QueueStats> {
    return unwrap(this.api.GET('/api/v1/queue/stats'));
  }
}

function authentication(options: MediaTasksOptions): Middleware {
  return {
    async onRequest({ request }) {
      const token = typeof options.token === 'function' ? await options.token() : options.token;
      if (token) request.headers.set('authorization', `Bearer ${token}`);
      else if (options.apiKey) request.headers.set('x-api-key', options.apiKey);
      return request;
    },
  };
}

/** A create route called with the input its task type takes (typed by TaskInput at the public method). */
type CreateCall = (
  path: (typeof CREATE_PATHS)[keyof typeof CREATE_PATHS],
  init: { body: unknown; headers: Record<string, string>; signal?: AbortSignal },
) => Promise<FetchAnswer<Task>>;

export class Tasks {
  constructor(
    private readonly api: Client<paths>,
    private readonly baseUrl: string,
    private readonly transport: 'fetch' | 'eventsource',
  ) {}

  /**
   * Submits a task: `type` is a task type (`image_generation`) or its short name (`image`), `input` what its create
   * route takes. With `wait`, answers once the task has finished (completed, failed or cancelled: read `status`).
   */
  async create<K extends TaskKind>(type: K, input: TaskInput<K>, options: CreateOptions = {}): Promise<Task> {
    const taskType = taskTypeOf(type);
    if (!taskType) throw new TypeError(`unknown task type ${type}`);
    const headers: Record<string, string> = {};
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    const post = this.api.POST as unknown as CreateCall;
    const task = await unwrap(post(CREATE_PATHS[taskType], { body: input, headers, signal: options.signal }));
    if (!options.wait) return task;
    const wait = options.wait === true ? {} : options.wait;
    return this.waitFor(task.id, { signal: options.signal, ...wait });
  }

  get(id: string, options: { signal?: AbortSignal } = {}): Promise<Task> {
    return unwrap(this.api.GET('/api/v1/media/tasks/{id}', { params: { path: { id } }, signal: options.signal }));
  }

  /** One page of your tasks, newest first; pass `next_cursor` as `cursor` for the next. */
  listPage(query: TaskListQuery = {}): Promise<TaskPage> {
    return unwrap(this.api.GET('/api/v1/media/tasks', { params: { query } }));
  }

  /** Every task matching `query`, newest first, page after page (`limit` is the page size). */
  async *list(query: TaskListQuery = {}): AsyncGenerator<Task> {
    let cursor = query.cursor;
    do {
      const page = await this.listPage({ ...query, cursor });
      yield* page.data;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  cancel(id: string): Promise<Task> {
    return unwrap(this.api.POST('/api/v1/media/tasks/{id}/cancel', { params: { path: { id } } }));
  }

  /** Runs a failed or cancelled task again (ConflictError otherwise). */
  retry(id: string): Promise<Task> {
    return unwrap(this.api.POST('/api/v1/media/tasks/{id}/retry', { params: { path: { id } } }));
  }

  /**
   * The output of a finished task (`status: completed`); a task still running answers its status without output. A
   * failed or cancelled task throws TaskFailedError, whose `taskError` says why.
   */
  result(id: string): Promise<TaskResult> {
    return unwrap(this.api.GET('/api/v1/media/tasks/{id}/result', { params: { path: { id } } }));
  }

  /** A 5-minute token (and the stream URL carrying it) that opens this task's event stream only. */
  eventsToken(id: string): Promise<TaskEventsToken> {
    return unwrap(this.api.POST('/api/v1/media/tasks/{id}/events/token', { params: { path: { id } } }));
  }

  /**
   * The task's events as they happen, ending with its terminal event (task.completed, task.failed or
   * task.cancelled); a task already finished yields that event alone. Reconnects with Last-Event-ID.
   */
  watch(id: string, options: WatchOptions = {}): AsyncGenerator<TaskEvent> {
    const EventSource = globalEventSource();
    if (this.transport === 'eventsource' && EventSource) {
      const streamUrl = async () => new URL((await this.eventsToken(id)).url, this.baseUrl).toString();
      return watchOverEventSource({ EventSource, streamUrl }, options);
    }
    return watchOverFetch(async (lastEventId, signal) => {
      const { error, data, response } = await this.api.GET('/api/v1/media/tasks/{id}/events', {
        params: { path: { id } },
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': String(lastEventId) } : {}) },
        parseAs: 'stream',
        signal,
      });
      if (response.status === 204) return null;
      if (!response.ok || !data) throw errorFromResponse(response, error);
      return data;
    }, options);
  }

  /** Waits over the live events until the task finishes, and answers it as it ended (any terminal status). */
  async waitFor(id: string, options: WaitOptions = {}): Promise<Task> {
    const timeout = options.timeout !== undefined ? AbortSignal.timeout(options.timeout) : undefined;
    const signals = [options.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length ? AbortSignal.any(signals) : undefined;
    try {
      for await (const event of this.watch(id, { signal })) {
        options.onEvent?.(event);
        if (isTerminalEvent(event)) break;
      }
      return await this.get(id, { signal });
    } catch (err) {
      if (timeout?.aborted && !options.signal?.aborted) throw new TimeoutError(id, options.timeout!);
      throw err;
    }
  }
}
