import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { MediaProvider, ProviderError } from '../providers/provider.port';
import { ProviderRegistry } from '../providers/provider.registry';
import { parseTaskRunData } from '../queue/job.types';
import { QueueName } from '../queue/queue.constants';
import { TaskSignalsService } from '../queue/task-signals.service';
import { TaskEntity, TaskError } from '../tasks/entities/task.entity';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { TaskErrorCode, TaskStatus, TaskType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { makeBackoffStrategy } from './retry-policy';
import { resolveTaskTimeouts } from './task-timeouts';

const PROGRESS_INTERVAL_MS = 1000;

type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

/**
 * Runs task jobs: loads the row, skips finished tasks, asks the registry for providers, runs one under the task
 * type's timeout with an abort signal (cancel, timeout), and writes the outcome through the state machine.
 * Transient failures go back to `queued` and are rethrown so BullMQ's backoff applies; permanent ones and the last
 * attempt fail the task and end the job with UnrecoverableError.
 */
@Processor(QueueName.Tasks, { autorun: false })
export class TaskProcessor extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('TaskProcessor');
  private readonly running = new Map<string, AbortController>();
  private readonly timeouts: Record<TaskType, number>;

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly registry: ProviderRegistry,
    private readonly signals: TaskSignalsService,
  ) {
    super();
    this.timeouts = resolveTaskTimeouts(config.taskTimeoutOverrides);
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.workerConcurrency;
    this.worker.opts.settings = {
      ...this.worker.opts.settings,
      backoffStrategy: makeBackoffStrategy(this.config.taskRetryDelaysMs),
    };
    this.signals.onCancel((taskId) => this.running.get(taskId)?.abort('cancelled' satisfies AbortReason));
    void this.worker.run().catch((err: Error) => this.logger.error(`worker stopped: ${err.message}`));
  }

  /** SIGTERM: stop taking jobs, give running ones SHUTDOWN_TIMEOUT_MS, then abort them (they are retried elsewhere). */
  async beforeApplicationShutdown(): Promise<void> {
    const closing = this.worker.close();
    const finished = await Promise.race([
      closing.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), this.config.shutdownTimeoutMs).unref()),
    ]);
    if (!finished) {
      this.logger.warn(
        `${this.running.size} task(s) still running after ${this.config.shutdownTimeoutMs} ms: aborting`,
      );
      for (const controller of this.running.values()) controller.abort('shutdown' satisfies AbortReason);
      await this.worker.close(true);
    }
  }

  async process(job: Job): Promise<void> {
    const { taskId } = parseTaskRunData(job.data);
    let task = await this.tasks.findById(taskId);
    if (!task) {
      this.logger.warn({ taskId }, 'job for a task that does not exist: dropped');
      return;
    }
    if (task.status === TaskStatus.Queued) {
      task = await this.stateMachine.start(taskId);
      if (!task) return; // cancelled (or taken) between the read and the update
    } else if (task.status !== TaskStatus.Processing) {
      return; // finished or pending: nothing to run (a duplicate or stale job)
    }
    // A task already `processing` is a job delivered again after its worker died: carry on under the same deadline.
    const deadline = (task.startedAt ?? new Date()).getTime() + this.timeouts[task.type];
    if (Date.now() >= deadline) {
      await this.failTask(task, timeoutError(this.timeouts[task.type]));
      return;
    }

    let candidates: MediaProvider[];
    try {
      candidates = this.registry.route(task.type, task.options);
    } catch (err) {
      await this.failTask(task, toTaskError(err));
      throw new UnrecoverableError((err as Error).message);
    }

    const controller = new AbortController();
    this.running.set(taskId, controller);
    const timer = setTimeout(() => controller.abort('timeout' satisfies AbortReason), deadline - Date.now());
    const provider = candidates[0];
    try {
      const result = await provider.run({
        taskId,
        type: task.type,
        input: task.input,
        signal: controller.signal,
        reportProgress: this.progressReporter(taskId),
      });
      controller.signal.throwIfAborted();
      const done = await this.stateMachine.complete(taskId, {
        output: result.output,
        provider: provider.name,
        cost: result.cost,
      });
      if (!done) this.logger.log({ taskId }, 'finished after it was cancelled: result dropped');
    } catch (err) {
      await this.handleFailure(job, task, provider, controller.signal, err);
    } finally {
      clearTimeout(timer);
      this.running.delete(taskId);
    }
  }

  /** Connection trouble while Redis is away: BullMQ reconnects by itself; log it once per error, structured. */
  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn(`worker: ${err.message}`);
  }

  /** BullMQ's final word on a job (out of attempts, unrecoverable, stalled too often): make sure the row agrees. */
  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error): Promise<void> {
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

  private async handleFailure(
    job: Job,
    task: TaskEntity,
    provider: MediaProvider,
    signal: AbortSignal,
    err: unknown,
  ): Promise<void> {
    const reason = signal.aborted ? (signal.reason as AbortReason) : undefined;
    if (reason === 'cancelled') return; // the row is already cancelled
    if (reason === 'shutdown') throw new Error('worker shut down while the task ran'); // retried by BullMQ
    if (reason === 'timeout') {
      await this.failTask(task, timeoutError(this.timeouts[task.type]), provider.name);
      throw new UnrecoverableError('timeout');
    }
    const error = toTaskError(err);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!error.retryable || lastAttempt) {
      this.logger.warn({ taskId: task.id, code: error.code, provider: provider.name }, `task failed: ${error.message}`);
      await this.failTask(task, error, provider.name);
      throw new UnrecoverableError(error.message);
    }
    this.logger.warn(
      { taskId: task.id, code: error.code, attempt: job.attemptsMade + 1 },
      `retrying: ${error.message}`,
    );
    await this.stateMachine.requeue(task.id, [TaskStatus.Processing], error);
    throw err; // BullMQ applies the backoff
  }

  private async failTask(task: TaskEntity, error: TaskError, provider?: string): Promise<void> {
    await this.stateMachine.fail(task.id, error, { from: [TaskStatus.Queued, TaskStatus.Processing], provider });
  }

  /** Progress events at most once a second per task; the last value in a burst is sent when the second is up. */
  private progressReporter(taskId: string): (progress: number) => void {
    let lastSent = 0;
    let pending: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const send = (value: number) => {
      lastSent = Date.now();
      pending = undefined;
      this.stateMachine
        .progress(taskId, value)
        .catch((err: Error) => this.logger.warn({ taskId }, `progress not saved: ${err.message}`));
    };
    return (progress: number) => {
      if (!Number.isFinite(progress)) return;
      const wait = lastSent + PROGRESS_INTERVAL_MS - Date.now();
      if (wait <= 0) return send(progress);
      pending = progress;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (pending !== undefined && this.running.has(taskId)) send(pending);
      }, wait).unref();
    };
  }
}

function timeoutError(ms: number): TaskError {
  return { code: TaskErrorCode.Timeout, message: `the task ran longer than its timeout of ${Math.round(ms / 1000)} s` };
}

export function toTaskError(err: unknown): TaskError {
  if (err instanceof ProviderError) return { code: err.code, message: err.message, retryable: err.retryable };
  // Anything unclassified (a database hiccup, a bug) is retried: it may well pass next time.
  return { code: TaskErrorCode.InternalError, message: (err as Error)?.message ?? String(err), retryable: true };
}
