/** Codes clients can branch on; the filter maps each to one HTTP status. */
export enum ErrorCode {
  ValidationFailed = 'validation_failed',
  Unauthorized = 'unauthorized',
  Forbidden = 'forbidden',
  NotFound = 'not_found',
  /** A stored file deleted after OUTPUT_RETENTION_DAYS (or with its upload): its link no longer serves it. */
  Gone = 'gone',
  /** No inbound flow hook with that id (POST /hooks/{hook_id}). */
  HookNotFound = 'hook_not_found',
  InvalidTransition = 'invalid_transition',
  TaskNotFinished = 'task_not_finished',
  TaskFailed = 'task_failed',
  PayloadTooLarge = 'payload_too_large',
  UnsupportedMediaType = 'unsupported_media_type',
  DependencyUnavailable = 'dependency_unavailable',
  /** The same Idempotency-Key with another request. */
  IdempotencyMismatch = 'idempotency_key_reused',
  /** The request clashes with one still in progress. */
  Conflict = 'conflict',
  /** Too many requests in the window (RATE_LIMIT_PER_MINUTE). */
  RateLimited = 'rate_limited',
  /** Too many unfinished tasks (QUOTA_MAX_ACTIVE_TASKS). */
  QuotaExceeded = 'quota_exceeded',
  /** The user's credit balance is short of a submit's price (CREDITS_ENABLED). */
  InsufficientCredits = 'insufficient_credits',
  Internal = 'internal_error',
}

export interface FieldProblem {
  field: string;
  message: string;
  /** The item of a batch the problem is in. */
  index?: number;
}

/**
 * Services throw these (they run in workers too, where HTTP exceptions mean nothing); one filter turns them into
 * HTTP answers.
 */
export class DomainException extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainException';
  }
}

export class NotFoundException extends DomainException {
  constructor(resource: string, id: string) {
    super(ErrorCode.NotFound, `${resource} ${id} not found`);
  }
}

export class ValidationException extends DomainException {
  constructor(readonly problems: FieldProblem[]) {
    super(ErrorCode.ValidationFailed, problems.map((p) => p.message).join('; '), { errors: problems });
  }
}

/** Postgres or Redis cannot be reached: the client should come back later. */
export class DependencyUnavailableException extends DomainException {
  constructor(
    readonly dependency: 'postgres' | 'redis',
    readonly retryAfterSeconds = 5,
  ) {
    super(ErrorCode.DependencyUnavailable, `${dependency} is unavailable, retry in ${retryAfterSeconds} s`, {
      dependency,
    });
  }
}
