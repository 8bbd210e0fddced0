import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { QueueName } from '../queue/queue.constants';
import { QueueBackend } from '../queue/queue-backend';
import { TaskSignalsService } from '../queue/task-signals.service';
import { drainBudgetMs } from '../shutdown';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { TaskErrorCode } from '../tasks/task.enums';
import { makeBackoffStrategy } from './retry-policy';
import { TaskProcessor } from './task.processor';
import { TaskRuns } from './task-runs';

/**
 * The BullMQ worker of the tasks queue, built at bootstrap from the configuration, on the queue backend in use. It hands each job to the TaskProcessor, stops runs whose lock lapsed or whose task was cancelled,
 * marks a task failed when BullMQ gives up on its job, and drains at shutdown.
 */
@Injectable()
export class TaskWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('TaskWorker');
  private worker?: Worker;

  constructor(
    private readonly config: AppConfig,
    private readonly backend: QueueBackend,
    private readonly processor: TaskProcessor,
    private readonly runs: TaskRuns,
    private readonly signals: TaskSignalsService,
    private readonly stateMachine: TaskStateMachine,
  ) {}

  onApplicationBootstrap(): void {
    const worker = this.backend.createWorker(QueueName.Tasks, (job, token) => this.processor.process(job, token), {
      concurrency: this.config.workerConcurrency,
      // A dead worker's jobs come back after the lock lapses: the stalled check runs as often as a lock lasts.
      lockDuration: this.config.workerLockMs,
      lockRenewTime: this.config.workerLockMs / 2,
      stalledInterval: this.config.workerLockMs,
      settings: { backoffStrategy: makeBackoffStrategy(this.config.taskRetryDelaysMs) },
      autorun: false,
    });
    this.worker = worker;
    // Connection trouble while the queue's datastore is away: BullMQ reconnects by itself; log each error, structured.
    worker.on('error', (err: Error) => this.logger.warn(`worker: ${err.message}`));
    worker.on('failed', (job: Job | undefined, err: Error) => void this.onFailed(job, err));
    // A run whose lock could not be renewed is no longer this worker's: the job is (or will be) another run's.
    worker.on('lockRenewalFailed', (jobIds: string[]) => void this.runs.lockLost(jobIds, (id) => this.lockHolder(id)));
    this.signals.onCancel((taskId) => this.runs.abort(taskId, 'cancelled'));
    void worker.run().catch((err: Error) => this.logger.error(`worker stopped: ${err.message}`));
  }

  /**
   * SIGTERM: stop taking jobs, give running ones most of SHUTDOWN_TIMEOUT_MS (drainBudgetMs), then abort them (they
   * are retried elsewhere) and give the worker the rest to hand them back; the process exits at the timeout anyway.
   */
  async beforeApplicationShutdown(): Promise<void> {
    if (!this.worker) return;
    const timeoutMs = this.config.shutdownTimeoutMs;
    const drainMs = drainBudgetMs(timeoutMs);
    const closing = this.worker.close();
    if (await settlesWithin(closing, drainMs)) return;
    this.logger.warn(`${this.runs.size} task(s) still running after ${drainMs} ms: aborting`);
    this.runs.abortAll('shutdown');
    // The close under way ends once the aborted runs have been handed back (a second close would only wait for it).
    if (!(await settlesWithin(closing, timeoutMs - drainMs))) {
      this.logger.warn(`the task worker did not close in time (is ${this.backend.dependency} reachable?)`);
    }
  }

  /** The token of the run that holds the job's lock now, if any. */
  private lockHolder(jobId: string): Promise<string | null> {
    return this.backend.lockHolder(this.worker!, jobId);
  }

  /** BullMQ's final word on a job (out of attempts, unrecoverable, stalled too often): make sure the row agrees. */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    const final =
      err instanceof UnrecoverableError ||
      err.name === 'UnrecoverableError' ||
      job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const taskId = (job.data as { taskId?: string }).taskId;
    if (!taskId) return;
    try {
      await this.stateMachine.fail(taskId, {
        code: err.message.includes('stalled') ? TaskErrorCode.Stalled : TaskErrorCode.InternalError,
        message: err.message,
      });
    } catch (e) {
      this.logger.error({ taskId }, `final-failure hook could not mark the task failed: ${(e as Error).message}`);
    }
  }
}

/** Whether `promise` settles within `ms` (a rejection counts as settled). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
