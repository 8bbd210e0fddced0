import type { Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import type { StepContext } from '../../src/processing/steps/step-context';
import { TaskRun } from '../../src/processing/task-runs';
import { providerContext } from '../../src/providers/provider.port';
import { TaskEntity } from '../../src/tasks/entities/task.entity';
import { TaskStatus, TaskType } from '../../src/tasks/task.enums';

/** A stand-in for a dependency: only the members a test gives exist (the rest are absent, so a call to one fails). */
export function fake<T>(members: Partial<Record<keyof T, unknown>>): T {
  return members as T;
}

/** A task row as a run finds it: processing, started a second ago, unless told otherwise. */
export function taskRow(overrides: Partial<TaskEntity> = {}): TaskEntity {
  return TaskEntity.create({
    id: randomUUID(),
    userId: 'alice',
    type: TaskType.ImageGeneration,
    input: { prompt: 'a lighthouse' },
    status: TaskStatus.Processing,
    startedAt: new Date(Date.now() - 1000),
    ...overrides,
  });
}

/** A BullMQ job of a task, with the attempts it has made and allows. */
export function taskJob(taskId: string, { attemptsMade = 0, attempts = 3 } = {}): Job {
  return fake<Job>({
    id: taskId,
    data: { taskId },
    attemptsMade,
    opts: { attempts },
    queueQualifiedName: 'bull:tasks',
    moveToDelayed: jest.fn(async () => undefined),
    moveToWaitingChildren: jest.fn(async () => true),
  });
}

/** What a step is given for one run of `task`. */
export function stepContext(task: TaskEntity, overrides: Partial<StepContext> = {}): StepContext {
  const run = overrides.run ?? new TaskRun(task.id, 'token-1', Date.now() + 60_000);
  return {
    task,
    job: taskJob(task.id),
    run,
    timeoutMs: 60_000,
    prefix: 'tasks',
    call: providerContext(task, { taskId: task.id, signal: run.signal, reportProgress: jest.fn() }),
    ...overrides,
  };
}
