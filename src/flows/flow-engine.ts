import { Inject, Injectable, Logger } from '@nestjs/common';
import { DelayedError, Job } from 'bullmq';
import { isUuid } from '../common/uuid';
import { TasksRepository } from '../tasks/tasks.repository';
import { TasksService } from '../tasks/tasks.service';
import { isTerminal, TaskPriority } from '../tasks/task.enums';
import { FlowError, FlowRunEntity, FlowStepEntity } from './entities/flow.entities';
import { FlowContext } from './expressions';
import { END, nextOf } from './flow-definition';
import { FlowEvents } from './flow-events';
import { FlowJobs } from './flow-jobs';
import { FLOW_STEP_EXECUTORS, FlowStep, FlowStepExecutor, STEP_DEFAULTS, StepExecution } from './flow-step.types';
import { FlowsRepository, StepEnd } from './flows.repository';

export interface FlowStepJobData {
  runId: string;
  stepId: string;
  round: number;
}

/** Job data may predate a deploy: check it when consumed. */
export function parseFlowStepData(data: unknown): FlowStepJobData {
  const d = data as Record<string, unknown> | null;
  if (!d || !isUuid(d.runId) || typeof d.stepId !== 'string' || !Number.isInteger(d.round)) {
    throw new Error(`invalid flow.step job data: ${JSON.stringify(data)}`);
  }
  return { runId: d.runId, stepId: d.stepId, round: d.round as number };
}

/**
 * Runs one step of a run per job (DESIGN decision 13): loads the rows, never runs a completed step again (it only
 * makes sure the next step's job exists), hands the step to its kind's executor, and writes what came of it — done
 * (the step, the next step's row and the run's position in one transaction, then the next job), wait (the job goes
 * back to the delayed set: no worker held), failed (a retry after backoff, then the step's on_error).
 */
@Injectable()
export class FlowEngine {
  private readonly logger = new Logger('FlowEngine');
  private readonly byKind: Map<string, FlowStepExecutor>;
  /** Steps running in this process, by run id: a cancel aborts them. */
  private readonly running = new Map<string, Set<AbortController>>();

  constructor(
    private readonly repo: FlowsRepository,
    private readonly jobs: FlowJobs,
    private readonly events: FlowEvents,
    private readonly tasks: TasksRepository,
    private readonly taskService: TasksService,
    @Inject(FLOW_STEP_EXECUTORS) executors: FlowStepExecutor[],
  ) {
    this.byKind = new Map(executors.map((e) => [e.kind as string, e]));
  }

  /** A run was cancelled (in any process): its steps running here are aborted. */
  abortRun(runId: string): void {
    for (const controller of this.running.get(runId) ?? []) controller.abort(new Error('the run was cancelled'));
  }

  async process(job: Job, token?: string): Promise<void> {
    const { runId, stepId, round } = parseFlowStepData(job.data);
    const run = await this.repo.findRun(runId);
    if (!run || run.round !== round || ['completed', 'failed', 'cancelled'].includes(run.status)) return;
    const row = await this.repo.findStep(runId, stepId);
    if (!row) return;
    const flow = await this.repo.findFlowForRun(run.flowId);
    const version = await this.repo.findVersion(run.flowId, run.version);
    if (!version) return this.failRun(run, stepId, { code: 'version_missing', message: 'the flow version is gone' });
    const priority = flow?.priority ?? TaskPriority.Medium;
    if (row.status === 'completed' || row.status === 'failed') {
      // Done before a crash: only make sure the run's next step has its job.
      if (run.currentStep && run.currentStep !== stepId) await this.jobs.add(run.id, run.currentStep, round, priority);
      return;
    }
    if (row.status === 'cancelled' || row.status === 'skipped') return;
    const index = version.steps.findIndex((s) => s.id === stepId);
    if (index < 0)
      return this.failRun(run, stepId, { code: 'step_missing', message: `step ${stepId} is not in the flow` });
    const step = version.steps[index];

    // A step that was waiting resumes its try; any other state starts a new one.
    const begun = await this.repo.beginStep(runId, stepId, round, row.status !== 'waiting');
    if (!begun) return;
    if (begun.firstStart) this.events.publish(begun.run, 'flow.started');
    const attempt = begun.step.attempts;
    const execution = await this.execute(step, begun.run, begun.step, attempt, priority);

    if (execution.kind === 'wait') {
      const saved = await this.repo.waitStep({
        runId,
        round,
        stepId,
        status: 'waiting',
        state: execution.state,
        taskId: typeof execution.state.task_id === 'string' ? execution.state.task_id : null,
        wakeAt: new Date(execution.untilMs),
        error: null,
      });
      if (!saved) {
        // Cancelled while the step made its task: that task is not wanted any more.
        const made = execution.state.task_id;
        if (typeof made === 'string') await this.cancelTask(begun.run.userId, made);
        return;
      }
      await job.moveToDelayed(Math.max(Date.now(), Math.ceil(execution.untilMs)), token);
      // A task that ended before the job was delayed woke nobody: look once more now that it is.
      const taskId = execution.state.task_id;
      if (typeof taskId === 'string') {
        const task = await this.tasks.findById(taskId);
        if (task && isTerminal(task.status)) await this.jobs.promote(runId, stepId, round);
      }
      throw new DelayedError();
    }

    if (execution.kind === 'failed') {
      const maxAttempts = step.attempts ?? STEP_DEFAULTS[step.kind].attempts;
      const error: FlowError = { code: execution.code, message: execution.message, step_id: stepId };
      if (execution.retryable && attempt < maxAttempts) {
        const backoff = (step.backoff_ms ?? STEP_DEFAULTS[step.kind].backoffMs) * 2 ** (attempt - 1);
        const wakeAt = Date.now() + backoff;
        const saved = await this.repo.waitStep({
          runId,
          round,
          stepId,
          status: 'pending',
          state: null,
          taskId: null,
          wakeAt: new Date(wakeAt),
          error,
        });
        if (!saved) return;
        await job.moveToDelayed(Math.ceil(wakeAt), token);
        throw new DelayedError();
      }
      const onError = step.on_error ?? 'fail';
      if (onError === 'fail') return this.failRun(begun.run, stepId, error);
      const next = onError === 'continue' ? nextOf(version.steps, index) : onError;
      return this.advance(begun.run, version.steps, stepId, { status: 'failed', error }, next, priority);
    }

    const next = execution.next ?? nextOf(version.steps, index);
    const end: StepEnd = {
      status: 'completed',
      output: execution.output ?? null,
      response: execution.response ?? null,
    };
    return this.advance(begun.run, version.steps, stepId, end, next, priority);
  }

  /**
   * BullMQ gave up on a step job (the engine's own trouble, every attempt): the run fails rather than wait forever.
   */
  async onJobFailedForGood(data: unknown, err: Error): Promise<void> {
    const { runId, stepId, round } = parseFlowStepData(data);
    const run = await this.repo.findRun(runId);
    if (!run || run.round !== round || ['completed', 'failed', 'cancelled'].includes(run.status)) return;
    await this.failRun(run, stepId, { code: 'internal_error', message: err.message, step_id: stepId });
  }

  private async cancelTask(userId: string, taskId: string): Promise<void> {
    await this.taskService
      .cancel({ id: userId, roles: [], isAdmin: false }, taskId)
      .catch((err: Error) => this.logger.debug(`task ${taskId} not cancelled: ${err.message}`));
  }

  /** Runs the executor under the step's timeout and the run's cancel; a throw is a retryable failure. */
  private async execute(
    step: FlowStep,
    run: FlowRunEntity,
    row: FlowStepEntity,
    attempt: number,
    priority: TaskPriority,
  ): Promise<StepExecution> {
    const executor = this.byKind.get(step.kind);
    if (!executor) {
      return { kind: 'failed', code: 'unknown_kind', message: `no executor for kind "${step.kind}"`, retryable: false };
    }
    const timeoutMs = step.timeout_ms ?? STEP_DEFAULTS[step.kind].timeoutMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`the step ran longer than ${timeoutMs} ms`)), timeoutMs);
    const set = this.running.get(run.id) ?? new Set();
    set.add(controller);
    this.running.set(run.id, set);
    try {
      const context = await this.contextOf(run);
      const aborted = new Promise<StepExecution>((resolve) =>
        controller.signal.addEventListener('abort', () =>
          resolve({
            kind: 'failed',
            code: 'timeout',
            message: (controller.signal.reason as Error)?.message ?? 'aborted',
            retryable: true,
          }),
        ),
      );
      return await Promise.race([
        executor.execute({
          runId: run.id,
          flowId: run.flowId,
          userId: run.userId,
          step,
          attempt,
          round: run.round,
          priority,
          context,
          signal: controller.signal,
          state: row.state,
        }),
        aborted,
      ]);
    } catch (err) {
      this.logger.warn({ runId: run.id, stepId: step.id }, `step threw: ${(err as Error).message}`);
      return { kind: 'failed', code: 'step_error', message: (err as Error).message, retryable: true };
    } finally {
      clearTimeout(timer);
      set.delete(controller);
      if (set.size === 0) this.running.delete(run.id);
    }
  }

  /** What expressions see: the trigger, every step reached so far, the run. */
  private async contextOf(run: FlowRunEntity): Promise<FlowContext> {
    const steps: FlowContext['steps'] = {};
    for (const s of await this.repo.stepsOf(run.id)) {
      steps[s.stepId] = {
        status: s.status,
        output: s.output ?? null,
        response: s.response ?? null,
        error: s.error ?? null,
        ...(s.taskId ? { task_id: s.taskId } : {}),
      };
    }
    return {
      trigger: run.trigger ?? null,
      steps,
      run: { id: run.id, flow_id: run.flowId, version: run.version, started_at: run.startedAt?.toISOString() },
    };
  }

  /** The step ends; the run goes on to `next`, or ends there. */
  private async advance(
    run: FlowRunEntity,
    steps: FlowStep[],
    stepId: string,
    end: StepEnd,
    next: string,
    priority: TaskPriority,
  ): Promise<void> {
    const target = next === END ? undefined : steps.find((s) => s.id === next);
    const written = await this.repo.finishStep(null, {
      runId: run.id,
      round: run.round,
      stepId,
      end,
      next: target ? { stepId: target.id, kind: target.kind } : null,
    });
    if (!written) return;
    const after = (await this.repo.findRun(run.id)) ?? run;
    const row = (await this.repo.findStep(run.id, stepId)) ?? undefined;
    if (end.status === 'completed') this.events.publish(after, 'flow.step.completed', row);
    if (target) await this.jobs.add(run.id, target.id, run.round, priority);
    else this.events.publish(after, 'flow.completed');
  }

  private async failRun(run: FlowRunEntity, stepId: string, error: FlowError): Promise<void> {
    const written = await this.repo.finishStep(null, {
      runId: run.id,
      round: run.round,
      stepId,
      end: { status: 'failed', error },
      next: null,
      runEnd: { status: 'failed', error },
    });
    if (!written) return;
    const after = (await this.repo.findRun(run.id)) ?? run;
    this.events.publish(after, 'flow.failed', (await this.repo.findStep(run.id, stepId)) ?? undefined);
  }
}
