/** One problem of a refused request: the field (dotted and indexed: `images[2].duracao`) and what is wrong with it. */
export interface FieldProblem {
  field: string;
  message: string;
  /** The item of a batch the problem is in. */
  index?: number;
}

/** The one body of every error answer of the platform. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
  request_id?: string;
  errors?: FieldProblem[];
  [extra: string]: unknown;
}

/** Every error this client throws on purpose extends this one. */
export class MediaTasksError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The platform answered with an error: its status, its code to branch on, and its request id to quote. */
export class ApiError extends MediaTasksError {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;

  constructor(
    status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.requestId = body.request_id;
  }
}

/** 400: the fields at fault, each with what is wrong with it. */
export class ValidationError extends ApiError {
  get errors(): FieldProblem[] {
    return this.body.errors ?? [];
  }
}

/** 401: no credentials, or a token or API key the platform refuses. */
export class UnauthorizedError extends ApiError {}

/** 403: authenticated, but not allowed (an admin route, a scope the key lacks, too few credits). */
export class ForbiddenError extends ApiError {}

/** 404: no such resource of yours. */
export class NotFoundError extends ApiError {}

/** 409: the resource is not in a state that allows this (cancel a finished task, retry a running one). */
export class ConflictError extends ApiError {}

/** 409 on a task's result: the task failed or was cancelled; `taskError` says why. */
export class TaskFailedError extends ConflictError {
  get taskError(): { code: string; message: string } | null {
    const error = this.body.error as { code: string; message: string } | null | undefined;
    return error ?? null;
  }
}

/** 422: the same Idempotency-Key was used with another request. */
export class IdempotencyKeyReusedError extends ApiError {}

/** 429: too many requests (or unfinished tasks, or open connections); `retryAfter` in seconds when the platform said. */
export class RateLimitedError extends ApiError {
  constructor(
    status: number,
    body: ErrorBody,
    readonly retryAfter: number | undefined,
  ) {
    super(status, body);
  }
}

/** 503: Postgres or Redis is away; `retryAfter` in seconds when the platform said. */
export class ServiceUnavailableError extends ApiError {
  constructor(
    status: number,
    body: ErrorBody,
    readonly retryAfter: number | undefined,
  ) {
    super(status, body);
  }
}

/** waitFor ran out of time before the task finished; the task goes on. */
export class TimeoutError extends MediaTasksError {
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`task ${taskId} did not finish within ${timeoutMs} ms`);
  }
}

/** A webhook whose signature is missing, stale or wrong: refuse it. */
export class WebhookVerificationError extends MediaTasksError {}

/** Seconds from a Retry-After header (delay-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The typed error of an error answer; `parsed` is its body as read (JSON, text, or nothing). */
export function errorFromResponse(response: Response, parsed: unknown): ApiError {
  const body = toErrorBody(response.status, parsed);
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
  switch (response.status) {
    case 400:
      return new ValidationError(response.status, body);
    case 401:
      return new UnauthorizedError(response.status, body);
    case 403:
      return new ForbiddenError(response.status, body);
    case 404:
      return new NotFoundError(response.status, body);
    case 409:
      return body.code === 'task_failed'
        ? new TaskFailedError(response.status, body)
        : new ConflictError(response.status, body);
    case 422:
      return new IdempotencyKeyReusedError(response.status, body);
    case 429:
      return new RateLimitedError(response.status, body, retryAfter);
    case 503:
      return new ServiceUnavailableError(response.status, body, retryAfter);
    default:
      return new ApiError(response.status, body);
  }
}

function toErrorBody(status: number, parsed: unknown): ErrorBody {
  if (parsed && typeof parsed === 'object' && typeof (parsed as ErrorBody).message === 'string') {
    const body = parsed as ErrorBody;
    return { ...body, statusCode: body.statusCode ?? status, code: body.code ?? `http_${status}` };
  }
  const text = typeof parsed === 'string' && parsed ? parsed.slice(0, 500) : `HTTP ${status}`;
  return { statusCode: status, code: `http_${status}`, message: text };
}
