import { SetMetadata } from '@nestjs/common';

/** The one scope a token may carry today: reading one task's live event stream. Stored in tokens: never rename. */
export const TASK_EVENTS_SCOPE = 'task-events';

/** A task-events token lives long enough to open (or reopen) a stream, not longer: it travels in a URL. */
export const TASK_EVENTS_TOKEN_TTL_SECONDS = 300;

export const SCOPED_TOKEN_RULE = 'auth:scoped-token';

export interface ScopedTokenRule {
  /** The `scope` claim the route accepts. */
  scope: string;
  /** The route parameter the token's `task` claim must equal. */
  param: string;
}

/**
 * Lets a route accept, besides a normal bearer token, a token limited to `scope` for the task named by the route
 * parameter `param` — as a bearer or as `?token=` (for clients that cannot set headers, like a browser's
 * EventSource). Full tokens are refused in the query string so they never end up in URLs; scoped tokens are refused
 * everywhere else.
 */
export const AcceptsScopedToken = (scope: string, param = 'id') =>
  SetMetadata(SCOPED_TOKEN_RULE, { scope, param } satisfies ScopedTokenRule);
