import { Injectable } from '@nestjs/common';
import { QueueGateway } from '../../queue/queue.gateway';
import { TaskEntity } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { isTerminal, TaskStatus } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { TasksService } from '../../tasks/tasks.service';
import { combinedResult, partError } from '../split-parts';
import { DONE, later, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/** How often a split task whose parts are not linked to its job (after a lost queue) looks at them again. */
export const PARTS_POLL_MS = 2000;

/** Whether a split task's parts say how it ends: one failed for good or was cancelled, or every one completed. */
export function partsSettled(parts: TaskEntity[]): boolean {
  if (parts.some((p) => p.status === TaskStatus.Failed || p.status === TaskStatus.Cancelled)) return true;
  return parts.length > 0 && parts.every((p) => p.status === TaskStatus.Completed);
}

/**
 * A split task's run: the parts' jobs are children of the task's job (a BullMQ flow), so the task's job waits while
 * the parts run, retry and fail alone, and runs again when the last part ended or one failed for good. Then the
 * task completes with the parts' clips in input order, or fails with the part's error and its other parts are
 * cancelled. Parts are rows, so a lost queue loses nothing: the next run links them again.
 */
@Injectable()
export class CollectParts {
  constructor(
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly queue: QueueGateway,
    private readonly service: TasksService,
  ) {}

  async run({ task, job, run }: StepContext): Promise<StepOutcome> {
    const parts = await this.tasks.findParts(task.id);
    if (await this.settle(task, parts)) return DONE;
    // Adding a part's job again is a no-op when it exists; a job lost with the queue is added, linked to this one.
    const parent = { id: job.id!, queue: job.queueQualifiedName };
    for (const part of parts) if (!isTerminal(part.status)) await this.queue.enqueueTask(part, { parent });
    // A part that failed for good while they were being linked may not move this job on once it waits (the Postgres
    // queue backend does not): look before waiting. The reconciler covers what ends in between.
    if (await this.settle(task, await this.tasks.findParts(task.id))) return DONE;
    if (run.token && (await job.moveToWaitingChildren(run.token))) return { kind: 'waiting-children' };
    // Nothing left to wait for: the parts ended while they were being linked (fast ones), or their jobs are not
    // linked to this one (after a lost queue). Look again now, then every PARTS_POLL_MS.
    if (await this.settle(task, await this.tasks.findParts(task.id))) return DONE;
    return later(PARTS_POLL_MS);
  }

  /** Fails the task on a part that failed for good, or completes it when every part did; false while any runs. */
  private async settle(task: TaskEntity, parts: TaskEntity[]): Promise<boolean> {
    const stopped = parts.find((p) => p.status === TaskStatus.Failed || p.status === TaskStatus.Cancelled);
    if (stopped) {
      // A part failed for good (after its own retries) or was cancelled: so does the task, and its other parts stop.
      const failed = await this.stateMachine.fail(task.id, partError(parts, stopped), {
        from: [TaskStatus.Processing],
        provider: stopped.provider,
      });
      if (failed) await this.service.cancelParts(task.id);
      return true;
    }
    if (parts.length > 0 && parts.every((p) => p.status === TaskStatus.Completed)) {
      await this.stateMachine.complete(task.id, combinedResult(parts));
      return true;
    }
    return false;
  }
}
