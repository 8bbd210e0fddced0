import { Injectable, Logger } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { ProviderError } from '../../providers/provider.port';
import { TaskEntity, TaskError } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskErrorCode, TaskStatus } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { WaitingTasks } from '../waiting-tasks';
import { StepContext } from './step-context';
import { TimeOutTask } from './time-out-task.step';

/** What failure handling needs of a run (the storage folder and provider context may not exist yet). */
export type FailureContext = Pick<StepContext, 'task' | 'job' | 'run' | 'timeoutMs' | 'cacheKey'>;

/** How a failed run ends: quietly, or with an error for BullMQ (retried with backoff, unless UnrecoverableError). */
export type FailureOutcome = { kind: 'done' } | { kind: 'rethrow'; error: unknown };

export function toTaskError(err: unknown): TaskError {
  if (err instanceof ProviderError) return { code: err.code, message: err.message, retryable: err.retryable };
  // Anything unclassified (a database hiccup, a bug) is retried: it may well pass next time.
  return { code: TaskErrorCode.InternalError, message: (err as Error)?.message ?? String(err), retryable: true };
}

/**
 * A run failed. Stopped runs end by their reason (cancelled: quietly; shutdown or lock lost: handed back; timeout:
 * the task fails). Otherwise transient failures go back to `queued` and are rethrown so BullMQ's backoff applies;
 * permanent ones and the last attempt fail the task and end the job with UnrecoverableError.
 */
@Injectable()
export class FailTask {
  private readonly logger = new Logger('FailTask');

  constructor(
    private readonly stateMachine: TaskStateMachine,
    private readonly tasks: TasksRepository,
    private readonly waiting: WaitingTasks,
    private readonly timeOut: TimeOutTask,
  ) {}

  /** `provider`: where the failure happened, when a provider was called. */
  async run(ctx: FailureContext, err: unknown, provider: string | undefined): Promise<FailureOutcome> {
    const { task, job, run } = ctx;
    const reason = run.abortReason;
    // The job is another run's now: leave the row, the provider's slot and the cache claim to it.
    if (reason === 'lock_lost') return { kind: 'rethrow', error: new Error('lock lost: the job is run elsewhere') };
    // An identical task waiting on this one's result may call the provider now.
    if (ctx.cacheKey) await this.waiting.releaseCacheLead(ctx.cacheKey, task.id);
    if (reason === 'cancelled') {
      if (provider) await this.waiting.releaseSlot(provider, task.id);
      await this.waiting.releaseTaskCaps(task);
      return { kind: 'done' }; // the row is already cancelled; the API cancelled the provider job
    }
    if (reason === 'shutdown') return { kind: 'rethrow', error: new Error('worker shut down while the task ran') };
    if (reason === 'timeout') {
      await this.timeOut.run(await this.reload(task), ctx.timeoutMs);
      return { kind: 'rethrow', error: new UnrecoverableError('timeout') };
    }
    const error = toTaskError(err);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!error.retryable || lastAttempt) {
      this.logger.warn({ taskId: task.id, code: error.code, provider }, `task failed: ${error.message}`);
      await this.stateMachine.fail(task.id, error, {
        from: [TaskStatus.Queued, TaskStatus.Processing],
        provider: provider ?? null,
      });
      if (provider) await this.waiting.releaseSlot(provider, task.id);
      await this.waiting.releaseTaskCaps(task);
      return { kind: 'rethrow', error: new UnrecoverableError(error.message) };
    }
    this.logger.warn(
      { taskId: task.id, code: error.code, attempt: job.attemptsMade + 1 },
      `retrying: ${error.message}`,
    );
    await this.stateMachine.requeue(task.id, [TaskStatus.Processing], error);
    return { kind: 'rethrow', error: err }; // BullMQ applies the backoff
  }

  private async reload(task: TaskEntity): Promise<TaskEntity> {
    return (await this.tasks.findById(task.id)) ?? task;
  }
}
