import type { Job, Queue, Worker, WorkerOptions } from 'bullmq';
import { QueueName } from './queue.constants';

/** The datastore BullMQ runs on: Redis (REDIS_URL) or the platform's own Postgres database (QUEUE_BACKEND). */
export type QueueBackendKind = 'redis' | 'postgres';

/** What a worker is built with, apart from where the queue lives (the backend adds that). */
export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

export type JobHandler = (job: Job, token?: string) => Promise<unknown>;

/** What a promote found: see QueueBackend.promoteDelayed. */
export type PromoteOutcome = 'promoted' | 'active' | 'other';

/**
 * Where the BullMQ queues and workers live, chosen once by QUEUE_BACKEND (see queue.module.ts). Everything that
 * builds a Queue or a Worker goes through here, so the rest of the platform never knows which datastore holds the
 * jobs. The queues made here are closed at shutdown, after the workers (closed by their owners before it).
 */
export abstract class QueueBackend {
  abstract readonly kind: QueueBackendKind;

  /** The dependency a 503 names when the jobs' datastore does not answer. */
  abstract readonly dependency: 'redis' | 'postgres';

  abstract createQueue(name: QueueName): Queue;

  /** A worker of `name`, not yet running when `autorun: false` is given. */
  abstract createWorker(name: QueueName, handler: JobHandler, settings: WorkerSettings): Worker;

  /** False while the datastore is known to be away: callers answer 503 before writing anything. */
  abstract get isAvailable(): boolean;

  /** The token of the run that holds the job's lock now, or null when no run does. */
  abstract lockHolder(worker: Worker, jobId: string): Promise<string | null>;

  /**
   * Moves the job from delayed to waiting; a job in any other state (running, waiting, gone) is left as it is.
   * Answers what it found: 'promoted', 'active' (a worker holds it: it may be on its way to delayed), or 'other'.
   */
  abstract promoteDelayed(queue: Queue, jobId: string): Promise<PromoteOutcome>;

  /** Removes the job (and its children) unless a worker holds it; true when no such job is left. */
  abstract removeJob(queue: Queue, jobId: string): Promise<boolean>;
}
