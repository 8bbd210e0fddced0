import { Injectable, Logger } from '@nestjs/common';
import { BatchesRepository } from '../batches/batches.repository';
import type { Sql } from '../database/sql-client';
import { TaskEventsService } from '../events/task-events.service';
import { TaskEntity, TaskError } from './entities/task.entity';
import { WebhookDispatch } from '../webhooks/webhook-dispatch';
import { TaskPatch, TasksRepository, Transitioned } from './tasks.repository';
import { isTerminal, TaskEventType, TaskStatus } from './task.enums';

/** For each target status, the statuses a task may come from. Nothing leaves a terminal status but a retry. */
export const ALLOWED_FROM: Record<TaskStatus, readonly TaskStatus[]> = {
  [TaskStatus.Pending]: [],
  [TaskStatus.Queued]: [TaskStatus.Pending, TaskStatus.Processing, TaskStatus.Failed, TaskStatus.Cancelled],
  [TaskStatus.Processing]: [TaskStatus.Queued],
  [TaskStatus.Completed]: [TaskStatus.Processing],
  [TaskStatus.Failed]: [TaskStatus.Pending, TaskStatus.Queued, TaskStatus.Processing],
  [TaskStatus.Cancelled]: [TaskStatus.Pending, TaskStatus.Queued, TaskStatus.Processing],
};

/** The event a transition into a status emits; a return to `queued` (retry, recovery) emits none. */
export const EVENT_FOR_STATUS: Record<TaskStatus, TaskEventType | null> = {
  [TaskStatus.Pending]: null,
  [TaskStatus.Queued]: null,
  [TaskStatus.Processing]: TaskEventType.Started,
  [TaskStatus.Completed]: TaskEventType.Completed,
  [TaskStatus.Failed]: TaskEventType.Failed,
  [TaskStatus.Cancelled]: TaskEventType.Cancelled,
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return ALLOWED_FROM[to].includes(from);
}

export interface CompletionResult {
  output: Record<string, unknown>;
  provider: string;
  cost?: { amount: number; currency: string };
  cached?: boolean;
}

/**
 * The only writer of `tasks.status`. Every change is one conditional UPDATE (`WHERE status = ANY(expected)`) that
 * also bumps the event sequence, and the event is published only when that update won — so a job delivered twice
 * cannot complete a task twice, and a cancelled task cannot be completed by a worker that was still running it.
 */
@Injectable()
export class TaskStateMachine {
  private readonly logger = new Logger('TaskStateMachine');

  constructor(
    private readonly tasks: TasksRepository,
    private readonly events: TaskEventsService,
    private readonly webhooks: WebhookDispatch,
    private readonly batches: BatchesRepository,
  ) {}

  /** Announces a task that was just inserted (with `event_seq = 1`) and sends its task.created delivery, if any. */
  announceCreated(task: TaskEntity, deliveryId: string | null): void {
    this.announce(TaskEventType.Created, { task, deliveryId });
  }

  start(id: string): Promise<TaskEntity | null> {
    const now = new Date();
    return this.transition(id, TaskStatus.Processing, {
      patch: { startedAt: now, progress: 0, error: null },
      incrementAttempts: true,
      at: now,
    });
  }

  complete(id: string, result: CompletionResult): Promise<TaskEntity | null> {
    const now = new Date();
    return this.transition(id, TaskStatus.Completed, {
      patch: {
        output: result.output,
        provider: result.provider,
        costAmount: result.cost?.amount ?? 0,
        costCurrency: result.cost?.currency ?? 'USD',
        cached: result.cached ?? false,
        progress: 1,
        error: null,
        completedAt: now,
      },
      at: now,
    });
  }

  fail(
    id: string,
    error: TaskError,
    opts: { from?: TaskStatus[]; provider?: string | null } = {},
  ): Promise<TaskEntity | null> {
    const now = new Date();
    const patch: TaskPatch = { error, completedAt: now };
    if (opts.provider !== undefined) patch.provider = opts.provider;
    return this.transition(id, TaskStatus.Failed, { from: opts.from, patch, at: now });
  }

  cancel(id: string): Promise<TaskEntity | null> {
    const now = new Date();
    return this.transition(id, TaskStatus.Cancelled, {
      patch: { completedAt: now, error: { code: 'cancelled', message: 'cancelled by the client' } },
      at: now,
    });
  }

  /** Back to `queued` after a transient failure or a lost worker; the last error stays visible meanwhile. */
  requeue(id: string, from: TaskStatus[], error?: TaskError): Promise<TaskEntity | null> {
    const patch: TaskPatch = error ? { error } : {};
    return this.transition(id, TaskStatus.Queued, { from, patch, at: new Date() });
  }

  /**
   * A client's retry of a failed or cancelled task: a fresh run, attempts keep counting. `also` runs in the
   * transaction of the change (holding the task's price again): when it throws, the task stays as it was.
   */
  async retry(id: string, also?: (tx: Sql, task: TaskEntity) => Promise<void>): Promise<TaskEntity | null> {
    const from = [TaskStatus.Failed, TaskStatus.Cancelled];
    const patch: TaskPatch = {
      error: null,
      output: null,
      progress: 0,
      startedAt: null,
      completedAt: null,
      providerJob: null,
    };
    if (!also) return this.transition(id, TaskStatus.Queued, { from, patch, at: new Date() });
    // A return to the queue makes no event, ends no batch: nothing to announce after it.
    const moved = await this.tasks.transitionWith(id, from, TaskStatus.Queued, patch, {
      event: EVENT_FOR_STATUS[TaskStatus.Queued],
      at: new Date(),
      also,
    });
    return moved?.task ?? null;
  }

  async progress(id: string, progress: number): Promise<TaskEntity | null> {
    const clamped = Math.min(1, Math.max(0, progress));
    const moved = await this.tasks.updateProgress(id, clamped, new Date());
    if (moved) this.announce(TaskEventType.Progress, moved);
    return moved?.task ?? null;
  }

  /** A split task's progress, raised to the share of its parts completed (never lowered; see the repository). */
  async partsProgress(parentId: string): Promise<TaskEntity | null> {
    const moved = await this.tasks.updatePartsProgress(parentId, new Date());
    if (moved) this.announce(TaskEventType.Progress, moved);
    return moved?.task ?? null;
  }

  private async transition(
    id: string,
    to: TaskStatus,
    opts: { from?: TaskStatus[]; patch: TaskPatch; incrementAttempts?: boolean; at: Date },
  ): Promise<TaskEntity | null> {
    const from = opts.from ?? ALLOWED_FROM[to];
    const illegal = from.filter((s) => !canTransition(s, to));
    if (illegal.length) throw new Error(`illegal transition ${illegal.join('|')} -> ${to}`);
    const event = EVENT_FOR_STATUS[to];
    const moved = await this.tasks.transition(id, from, to, opts.patch, {
      event,
      incrementAttempts: opts.incrementAttempts,
      at: opts.at,
    });
    if (moved && event) this.announce(event, moved);
    if (moved?.task.batchId && isTerminal(to)) await this.closeBatch(moved.task.batchId);
    return moved?.task ?? null;
  }

  /** After a batch task's terminal transition commits: the batch's batch.completed, if this was its last task. */
  private async closeBatch(batchId: string): Promise<void> {
    try {
      const closed = await this.batches.closeIfFinished(batchId);
      if (closed?.deliveryId) this.webhooks.dispatch(closed.deliveryId);
    } catch (err) {
      // The task's own transition stands; only the batch's completion is missed (until another of its tasks ends).
      this.logger.warn({ batchId }, `batch completion check failed: ${(err as Error).message}`);
    }
  }

  /** After the commit: the delivery row is written, so it can go (the reconciler sends it if this is lost). */
  private announce(type: TaskEventType, { task, deliveryId }: Transitioned): void {
    if (deliveryId) this.webhooks.dispatch(deliveryId);
    this.events.publish({
      type,
      taskId: task.id,
      userId: task.userId,
      sequence: task.eventSeq,
      timestamp: task.updatedAt,
      task,
    });
  }
}
