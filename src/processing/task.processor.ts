import { Injectable, Logger } from '@nestjs/common';
import { DelayedError, Job, WaitingChildrenError } from 'bullmq';
import { ResultCache } from '../cache/result-cache.service';
import { AppConfig } from '../config/app-config';
import { providerContext, ProviderContext, ProviderError, ProviderErrorCode } from '../providers/provider.port';
import { parseTaskRunData } from '../queue/job.types';
import { outputPrefix } from '../storage/storage.backend';
import { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { isTerminal, TaskType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { CollectParts } from './steps/collect-parts.step';
import { FailTask, FailureContext } from './steps/fail-task.step';
import { PollTask } from './steps/poll-task.step';
import { ServeFromCache } from './steps/serve-from-cache.step';
import { SplitTask } from './steps/split-task.step';
import { StepContext } from './steps/step-context';
import { StepOutcome } from './steps/step-outcome';
import { StoreOutputs } from './steps/store-outputs.step';
import { SubmitTask } from './steps/submit-task.step';
import { TimeOutTask } from './steps/time-out-task.step';
import { TaskProgress } from './task-progress';
import { TaskRun, TaskRuns } from './task-runs';
import { deadlineOf, nextStep, RunStep } from './task-step';
import { resolveTaskTimeouts } from './task-timeouts';
import { WaitingTasks } from './waiting-tasks';

/**
 * Runs task jobs (the TaskWorker hands them over). One task is a series of runs of the same BullMQ job: each run
 * loads the row, derives the next step from it (task-step.ts) and runs that step and the ones it leads to (steps/):
 * split or collect parts, serve from the cache, submit at the best provider, poll, store the outputs. A step that must
 * wait puts the job back in the delayed set; a failure goes to FailTask, which says how the job ends.
 */
@Injectable()
export class TaskProcessor {
  private readonly logger = new Logger('TaskProcessor');
  private readonly timeouts: Record<TaskType, number>;

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly cache: ResultCache,
    private readonly runs: TaskRuns,
    private readonly progress: TaskProgress,
    private readonly timeOut: TimeOutTask,
    private readonly split: SplitTask,
    private readonly collect: CollectParts,
    private readonly serveFromCache: ServeFromCache,
    private readonly submit: SubmitTask,
    private readonly poll: PollTask,
    private readonly store: StoreOutputs,
    private readonly fail: FailTask,
    private readonly waiting: WaitingTasks,
  ) {
    this.timeouts = resolveTaskTimeouts(config.taskTimeoutOverrides);
  }

  async process(job: Job, token?: string): Promise<void> {
    const { taskId } = parseTaskRunData(job.data);
    const task = await this.load(taskId);
    if (!task) return;
    const now = Date.now();
    const timeoutMs = this.timeouts[task.type];
    const cacheKey = this.cacheKeyOf(task);
    const step = nextStep(task, { now, timeoutMs, partMinImages: this.config.fanout.partMinImages, cacheKey });
    if (step.kind === 'skip') {
      // Finished or pending: a duplicate or stale job. A job of an ended task may be the delayed look of a run that
      // was asking for a slot as the task was cancelled, and stood in a line again: the task leaves it.
      if (isTerminal(task.status)) await this.waiting.leaveLines(task);
      return;
    }
    if (step.kind === 'timed-out') return this.timeOut.run(task, timeoutMs);

    const run = this.runs.begin(taskId, token, deadlineOf(task, timeoutMs, now));
    try {
      let outcome = await this.runSteps({ task, job, run, timeoutMs, cacheKey }, step);
      if (outcome.kind === 'later') outcome = await this.moveToDelayed(job, token, outcome.ms);
      if (outcome.kind === 'failed') {
        // No provider named by the step: the one on the row, if any (a poll's, or an earlier attempt's).
        const provider = outcome.provider ?? task.provider ?? undefined;
        const ended = await this.fail.run({ task, job, run, timeoutMs, cacheKey }, outcome.error, provider);
        if (ended.kind === 'rethrow') throw ended.error;
        return;
      }
      if (outcome.kind === 'later') throw new DelayedError();
      if (outcome.kind === 'waiting-children') throw new WaitingChildrenError();
    } finally {
      this.runs.end(run);
    }
  }

  /** The common case first: a queued task starts in one statement; anything else needs a look at the row. */
  private async load(taskId: string): Promise<TaskEntity | null> {
    const task = (await this.stateMachine.start(taskId)) ?? (await this.tasks.findById(taskId));
    if (!task) this.logger.warn({ taskId }, 'job for a task that does not exist: dropped');
    return task;
  }

  /** Runs `step` and the steps it leads to, until one says how the run ends; a step that throws has failed. */
  private async runSteps(base: FailureContext, step: RunStep): Promise<StepOutcome> {
    const { task } = base;
    try {
      const ctx: StepContext = { ...base, prefix: storagePrefix(task), call: this.providerContext(task, base.run) };
      for (;;) {
        const outcome = await this.runStep(ctx, step);
        if (outcome.kind !== 'next') return outcome;
        step = outcome.step;
      }
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  private async runStep(ctx: StepContext, step: RunStep): Promise<StepOutcome> {
    switch (step.kind) {
      case 'fan-out':
        return this.split.run(ctx);
      case 'collect':
        return this.collect.run(ctx);
      case 'cached':
        return this.serveFromCache.run(ctx, step.cacheKey);
      case 'submit':
        return this.submit.run(ctx);
      case 'poll':
        return this.poll.run(ctx, step.provider, step.providerJob);
      case 'store':
        return this.store.run(ctx, step.call);
    }
  }

  /** Back to the delayed set: the job runs again at `Date.now() + ms` (a later step of the same task). */
  private async moveToDelayed(job: Job, token: string | undefined, ms: number): Promise<StepOutcome> {
    try {
      // Whole milliseconds: scaled poll intervals are fractional, and BullMQ on Postgres keeps the time as a bigint.
      await job.moveToDelayed(Date.now() + Math.max(0, Math.ceil(ms)), token);
      return { kind: 'later', ms };
    } catch (error) {
      return { kind: 'failed', error };
    }
  }

  private providerContext(task: TaskEntity, run: TaskRun): ProviderContext {
    return providerContext(task, {
      taskId: task.id,
      signal: run.signal,
      reportProgress: this.progress.reporterFor(task.id),
    });
  }

  /** The cache key of a task, or undefined when the cache is off or the task bypasses it. */
  private cacheKeyOf(task: TaskEntity): string | undefined {
    if (!this.cache.enabled || task.options?.cache === 'bypass') return undefined;
    return this.cache.keyOf(task.type, task.input, task.userId);
  }
}

/**
 * Where the task's outputs go (see outputPrefix). Submit refuses a folder storage would not take; a task accepted
 * before that rule fails here, before a provider is paid, instead of after.
 */
function storagePrefix(task: TaskEntity): string {
  const path = task.input.path;
  const prefix = outputPrefix(typeof path === 'string' ? path : undefined);
  if (!prefix) throw ProviderError.permanent(ProviderErrorCode.InputInvalid, 'path: storage does not take this folder');
  return prefix;
}
