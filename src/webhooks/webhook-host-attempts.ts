/** One host's count in the current one-second window. */
export interface HostWindow {
  /** Attempts counted in the window, these ones included. */
  attempts: number;
  /** How long until the window ends. */
  msBeforeNext: number;
}

export const HOST_WINDOW_MS = 1000;

/**
 * Delivery attempts per destination host in fixed one-second windows, counted where every worker process shares them:
 * Redis or Postgres, as QUEUE_BACKEND says.
 */
export abstract class WebhookHostAttempts {
  /** Counts `count` attempts (default one) to `host` now. Rejects when the shared count cannot be reached. */
  abstract add(host: string, count?: number): Promise<HostWindow>;
}
