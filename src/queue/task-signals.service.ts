export type CancelHandler = (taskId: string) => void;

/**
 * Cross-process signals to running tasks (cancel): the API sends, every worker process hears it and aborts the task if
 * it runs it. Redis pub/sub or Postgres NOTIFY, as QUEUE_BACKEND says; a signal is a hint (the row is already
 * cancelled, so a worker that misses it only wastes work).
 */
export abstract class TaskSignalsService {
  /** Never rejects: a signal that cannot be sent is logged. */
  abstract publishCancel(taskId: string): Promise<void>;
  /** Calls `handler` with the id of every task cancelled from now on, in any process. */
  abstract onCancel(handler: CancelHandler): void;
}
