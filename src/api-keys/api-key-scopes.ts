/**
 * What an API key may do. Stored in `api_keys.scopes`: never rename one.
 * - `tasks`: act as the key's owner on the task, batch and delivery endpoints (and the sources' video routes);
 * - `queue:read`: the queue statistics (`/queue/stats`, `/api/v1/queue/stats`);
 * - `queue:write`: also clean, pause and resume the queues.
 * A key never gets anything else an admin has.
 */
export enum ApiKeyScope {
  Tasks = 'tasks',
  QueueRead = 'queue:read',
  QueueWrite = 'queue:write',
}

export const API_KEY_SCOPES: readonly string[] = Object.values(ApiKeyScope);

/** A key made without `scopes` acts on tasks, as every key did before scopes existed. */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = [ApiKeyScope.Tasks];

/** Scopes that come with another: whoever may clean and pause the queues may read them. */
const IMPLIED: Partial<Record<ApiKeyScope, ApiKeyScope[]>> = {
  [ApiKeyScope.QueueWrite]: [ApiKeyScope.QueueRead],
};

/** Whether a key holding `held` may do what `needed` allows. */
export function scopesAllow(held: readonly string[], needed: ApiKeyScope): boolean {
  return held.some((scope) => scope === (needed as string) || (IMPLIED[scope as ApiKeyScope] ?? []).includes(needed));
}
