import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DomainException, ErrorCode, ValidationException } from '../../common/domain-exception';
import { DTO_BY_TYPE, validateAs } from '../../tasks/dto/task-dto-by-type';
import { TaskStatus, TaskType } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { TasksService } from '../../tasks/tasks.service';
import { renderTemplate, templateProblems } from '../expressions';
import { FlowStepExecutor, StepExecution, StepRun, TaskStep } from '../flow-step.types';

/** How often a step waiting on a task looks by itself, should the task's end not wake it. */
export const TASK_WAIT_CHECK_MS = 30_000;

const TASK_TYPES = Object.values(TaskType) as string[];

/** The id of the task a step makes in a round: the same on every try, so a crash adopts it instead of a second. */
export function stepTaskId(runId: string, stepId: string, round: number): string {
  const hex = createHash('sha1').update(`flow-step:${runId}.${stepId}.${round}`).digest('hex');
  // A version-5 shaped UUID (name-based, SHA-1).
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Creates a task as the run's owner from the rendered `input`, then waits for it without holding a worker: the
 * task's terminal event wakes the step (and it looks by itself every TASK_WAIT_CHECK_MS). Its output is the task's.
 */
@Injectable()
export class TaskExecutor extends FlowStepExecutor<TaskStep> {
  readonly kind = 'task' as const;

  constructor(
    private readonly tasks: TasksService,
    private readonly taskRows: TasksRepository,
  ) {
    super();
  }

  problems(step: TaskStep): string[] {
    const problems: string[] = [];
    if (typeof step.task_type !== 'string' || !TASK_TYPES.includes(step.task_type)) {
      problems.push(`task_type: must be one of ${TASK_TYPES.join(', ')}`);
    }
    if (step.input === null || typeof step.input !== 'object' || Array.isArray(step.input)) {
      problems.push('input: must be an object');
    } else {
      problems.push(...templateProblems(step.input, 'input'));
    }
    return problems;
  }

  async execute(run: StepRun<TaskStep>): Promise<StepExecution> {
    const taskId = typeof run.state?.task_id === 'string' ? run.state.task_id : null;
    if (taskId) return this.look(taskId);
    return this.create(run);
  }

  private async create(run: StepRun<TaskStep>): Promise<StepExecution> {
    const { step } = run;
    const id = stepTaskId(run.runId, step.id, run.round ?? 1);
    // A try that died between the create and the save of its state: the task exists, adopt it.
    if (await this.taskRows.findById(id)) return this.look(id);
    let input: unknown;
    try {
      input = await renderTemplate(step.input, run.context);
    } catch (err) {
      return { kind: 'failed', code: 'input_invalid', message: `input: ${(err as Error).message}`, retryable: false };
    }
    const type = step.task_type as TaskType;
    const { dto, problems } = validateAs(DTO_BY_TYPE[type], input);
    if (problems.length) {
      return {
        kind: 'failed',
        code: 'input_invalid',
        message: problems.map((p) => `input.${p.field}: ${p.message}`).join('; '),
        retryable: false,
      };
    }
    const named = input !== null && typeof input === 'object' && 'priority' in input;
    if (!named && run.priority) (dto as { priority?: string }).priority = run.priority;
    const user = { id: run.userId, roles: [], isAdmin: false };
    try {
      await this.tasks.create(user, type, dto, { id, flowRunId: run.runId, flowStepId: step.id });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') return this.look(id); // made by a try running alongside
      if (err instanceof ValidationException) {
        const message = err.problems.map((p) => `input.${p.field}: ${p.message}`).join('; ');
        return { kind: 'failed', code: 'input_invalid', message, retryable: false };
      }
      if (err instanceof DomainException) {
        const retryable = [ErrorCode.DependencyUnavailable, ErrorCode.QuotaExceeded, ErrorCode.RateLimited].includes(
          err.code,
        );
        return { kind: 'failed', code: err.code, message: err.message, retryable };
      }
      throw err;
    }
    return { kind: 'wait', untilMs: Date.now() + TASK_WAIT_CHECK_MS, state: { task_id: id } };
  }

  private async look(taskId: string): Promise<StepExecution> {
    const task = await this.taskRows.findById(taskId);
    if (!task) {
      return { kind: 'failed', code: 'task_missing', message: `task ${taskId} is gone`, retryable: false };
    }
    switch (task.status) {
      case TaskStatus.Completed:
        return { kind: 'done', output: { ...(task.output ?? {}), task_id: task.id, status: task.status } };
      case TaskStatus.Failed:
      case TaskStatus.Cancelled:
        // The task had its own retries: its end is the step's.
        return {
          kind: 'failed',
          code: task.error?.code ?? `task_${task.status}`,
          message: task.error?.message ?? `task ${task.id} ${task.status}`,
          retryable: false,
        };
      case TaskStatus.Pending:
      case TaskStatus.Queued:
      case TaskStatus.Processing:
        return { kind: 'wait', untilMs: Date.now() + TASK_WAIT_CHECK_MS, state: { task_id: task.id } };
    }
  }
}
