import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuthUser } from '../auth/auth.types';
import {
  DomainException,
  ErrorCode,
  FieldProblem,
  NotFoundException,
  ValidationException,
} from '../common/domain-exception';
import { ProviderRegistry } from '../providers/provider.registry';
import { CreditsRepository, insufficientCredits } from '../credits/credits.repository';
import { AppConfig } from '../config/app-config';
import { MediaUrlGuard, UrlGuard } from '../security/url-guard';
import { StorageService } from '../storage/storage.service';
import { QueueGateway } from '../queue/queue.gateway';
import { TaskSignalsService } from '../queue/task-signals.service';
import { COMMON_FIELDS, TaskCreateBaseDto } from './dto/task-create-base.dto';
import { BEST_MODEL, UPLOAD_REFERENCE } from './dto/validators';
import { TaskListResponseDto, TaskResponseDto } from './dto/task-response.dto';
import { TaskSearchDto } from './dto/task-search.dto';
import { TaskEntity } from './entities/task.entity';
import { taskRequestOf } from './task-input';
import { TaskStateMachine } from './task-state-machine';
import { encodeCursor, pageOf, TASKS_PATH, toTaskResponse } from './task.mapper';
import { isTerminal, TaskPriority, TaskStatus, TaskType } from './task.enums';
import { TasksRepository } from './tasks.repository';
import { isUuid } from '../common/uuid';
import type { Sql } from '../database/sql-client';
import { UploadsService } from '../uploads/uploads.service';

export type TaskResult =
  | { state: 'completed'; body: { id: string; status: TaskStatus; output: Record<string, unknown> | null } }
  | { state: 'pending'; body: { id: string; status: TaskStatus; status_url: string } };

@Injectable()
export class TasksService {
  private readonly logger = new Logger('TasksService');

  constructor(
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly queue: QueueGateway,
    private readonly signals: TaskSignalsService,
    private readonly providers: ProviderRegistry,
    private readonly storage: StorageService,
    private readonly guard: UrlGuard,
    private readonly mediaGuard: MediaUrlGuard,
    private readonly config: AppConfig,
    private readonly credits: CreditsRepository,
    private readonly uploads: UploadsService,
  ) {}

  /**
   * Submit = insert + enqueue (DESIGN decision 2). Redis is checked first so an outage answers 503 before anything
   * is written; if the enqueue itself fails after the insert, the task is still accepted and the reconciler
   * enqueues it.
   */
  async create(
    user: AuthUser,
    type: TaskType,
    dto: TaskCreateBaseDto,
    opts: { id?: string; webhookFormat?: 'sources'; flowRunId?: string; flowStepId?: string } = {},
  ): Promise<TaskResponseDto> {
    const task = this.prepare(user, type, dto, opts);
    const uploads = await this.uploadProblems(user, task.input);
    if (uploads.length) throw new ValidationException(uploads);
    const inserted = await this.write(user, [task]);
    await this.launch(inserted);
    return toTaskResponse(task, { now: task.createdAt });
  }

  /**
   * Submits prepared tasks together: `first` (e.g. the batch row) and every task insert run in one transaction, so
   * either all are accepted or none; then each is announced and enqueued like a single create.
   */
  async createMany(user: AuthUser, tasks: TaskEntity[], first: (tx: Sql) => Promise<void>): Promise<TaskEntity[]> {
    const inserted = await this.write(user, tasks, first);
    await this.launch(inserted);
    return tasks;
  }

  /**
   * The checks of a submit beyond the DTO's (provider, URLs, what the provider can do, the webhook secret) and the
   * task it makes, not yet written. Throws ValidationException listing the problems.
   */
  prepare(
    user: AuthUser,
    type: TaskType,
    dto: TaskCreateBaseDto,
    opts: {
      id?: string;
      batchId?: string;
      createdAt?: Date;
      webhookFormat?: 'sources';
      flowRunId?: string;
      flowStepId?: string;
    } = {},
  ): TaskEntity {
    if (dto.provider !== undefined && !this.providers.has(dto.provider)) {
      throw new ValidationException([{ field: 'provider', message: `provider "${dto.provider}" is unknown` }]);
    }
    const input = extractInput(dto);
    this.assertReachableUrls(input, dto.webhook_url);
    this.assertInlineImagesFit(input);
    this.assertCanSign(dto.webhook_url, dto.webhook_secret);
    const options = stripUndefined({
      provider: dto.provider,
      strategy: dto.strategy,
      cache: dto.cache,
      webhook_format: opts.webhookFormat,
    });
    // What the chosen provider(s) cannot do with this input is the client's mistake: 400 now, not a failed task later.
    const problems = this.providers.submitProblems(taskRequestOf({ type, input }), options);
    if (problems.length) throw new ValidationException(problems);
    return TaskEntity.create({
      id: opts.id ?? randomUUID(),
      userId: user.id,
      type,
      priority: dto.priority ?? TaskPriority.Medium,
      input,
      options,
      webhookUrl: dto.webhook_url ?? null,
      webhookSecret: dto.webhook_secret ?? null,
      webhookEvents: dto.webhook_events ?? null,
      metadata: dto.metadata ?? null,
      batchId: opts.batchId ?? null,
      flowRunId: opts.flowRunId ?? null,
      flowStepId: opts.flowStepId ?? null,
      createdAt: opts.createdAt ?? new Date(),
      runAt: dto.run_at === undefined ? null : new Date(dto.run_at),
    });
  }

  /**
   * The check of a prepared task's `upload:<id>` references (it needs the database, which prepare does not touch):
   * each must be an upload of the user's that has not expired; one problem per field that is not.
   */
  uploadProblems(user: AuthUser, input: Record<string, unknown>): Promise<FieldProblem[]> {
    return this.uploads.problemsOf(user.id, input);
  }

  /**
   * A webhook URL needs a secret to sign with: its own, or this deployment's WEBHOOK_SECRET — unless
   * WEBHOOK_REQUIRE_SIGNATURE=false, which lets its webhooks go unsigned.
   */
  assertCanSign(webhookUrl: string | undefined, webhookSecret: string | undefined): void {
    const { secret, requireSignature } = this.config.webhook;
    if (webhookUrl !== undefined && !webhookSecret && !secret && requireSignature) {
      throw new ValidationException([
        {
          field: 'webhook_secret',
          message: 'webhook_secret is required with webhook_url: this deployment has no WEBHOOK_SECRET to sign with',
        },
      ]);
    }
  }

  /** The URL guard on one URL the platform will call: 400 naming the field. */
  assertReachableUrl(field: string, url: string): void {
    const problem = this.guard.problem(url);
    if (problem) throw new ValidationException([{ field, message: `${field} ${problem}` }]);
  }

  /**
   * Writes new tasks behind the gates: Redis up (else 503 before anything is written), room in the user's quota
   * (QUOTA_MAX_ACTIVE_TASKS), and credits for their prices (CREDITS_ENABLED: held from the balance, else 403). With a
   * quota or credits the checks and the inserts run in one transaction under locks of the user's, so concurrent
   * submits of one user cannot all pass the same count or spend the same credits; without either, a single task is
   * one plain INSERT (the submit path's only write).
   */
  private async write(
    user: AuthUser,
    tasks: TaskEntity[],
    first?: (tx: Sql) => Promise<void>,
  ): Promise<{ task: TaskEntity; deliveryId: string | null }[]> {
    this.queue.assertAvailable();
    const max = this.config.quotaMaxActiveTasks;
    if (max <= 0 && !this.credits.enabled && !first && tasks.length === 1) {
      return [{ task: tasks[0], deliveryId: (await this.tasks.insert(tasks[0])).deliveryId }];
    }
    return this.tasks.transaction(async (tx) => {
      if (max > 0) {
        const active = await this.tasks.lockAndCountActive(tx, user.id);
        this.assertWithinQuota(active, tasks.length);
      }
      if (this.credits.enabled) {
        const holds = tasks.map((task) => ({
          taskId: task.id,
          batchId: task.batchId,
          amount: this.credits.priceOf(task),
          reason: `${task.type} submitted`,
        }));
        await this.credits.holdOn(tx, user.id, holds);
      }
      if (first) await first(tx);
      const rows: { task: TaskEntity; deliveryId: string | null }[] = [];
      for (const task of tasks) rows.push({ task, deliveryId: (await this.tasks.insertOn(tx, task)).deliveryId });
      return rows;
    });
  }

  /** After the commit: events announced (task.created deliveries rung), jobs added; a lost add is the reconciler's. */
  private async launch(inserted: { task: TaskEntity; deliveryId: string | null }[]): Promise<void> {
    for (const { task, deliveryId } of inserted) {
      task.webhookSecret = undefined;
      this.stateMachine.announceCreated(task, deliveryId);
    }
    await Promise.all(
      inserted.map(({ task }) => this.queue.enqueueTaskOrDefer(task, { delay: delayUntil(task.runAt) })),
    );
  }

  /** The tasks of a batch as the task resource shows them (the caller has checked the batch is the user's). */
  async listBatch(batchId: string): Promise<TaskResponseDto[]> {
    const now = new Date();
    const rows = await this.tasks.findByBatch(batchId);
    return Promise.all(rows.map(async (t) => toTaskResponse(await this.withFreshLinks(t), { now })));
  }

  async get(user: AuthUser, id: string): Promise<TaskResponseDto> {
    const task = await this.findOwned(user, id);
    const queuePosition = task.status === TaskStatus.Queued ? await this.tasks.queuePosition(task) : undefined;
    return toTaskResponse(await this.withFreshLinks(task), { queuePosition });
  }

  async list(user: AuthUser, query: TaskSearchDto): Promise<TaskListResponseDto> {
    const { userId, after, limit } = pageOf(user, query);
    const { rows, hasMore } = await this.tasks.list({
      userId,
      type: query.task_type,
      status: query.status,
      createdAfter: query.created_after,
      createdBefore: query.created_before,
      parentId: query.parent_id,
      limit,
      after,
    });
    const now = new Date();
    return {
      data: await Promise.all(rows.map(async (t) => toTaskResponse(await this.withFreshLinks(t), { now }))),
      next_cursor: hasMore ? encodeCursor(rows[rows.length - 1]) : null,
    };
  }

  /** Cancels a queued or running task: the queued job is removed, a running one is told to stop wherever it runs. */
  async cancel(user: AuthUser, id: string): Promise<TaskResponseDto> {
    const task = await this.findOwned(user, id);
    if (isTerminal(task.status)) throw this.alreadyFinished(task);
    const cancelled = await this.stateMachine.cancel(id);
    if (!cancelled) {
      // It finished between our read and the update.
      throw this.alreadyFinished((await this.tasks.findById(id)) ?? task);
    }
    await this.stop(cancelled, task.status);
    return toTaskResponse(cancelled);
  }

  /**
   * A task that stopped before its provider finished (cancelled, timed out, failed by a part): its job is removed or
   * told to stop, its provider job cancelled (it would go on costing) and its slot freed; a split task's unfinished
   * parts are cancelled the same way.
   */
  async stop(task: TaskEntity, previous: TaskStatus = task.status): Promise<void> {
    const removed = await this.queue.removeTaskJob(task.id).catch(() => false);
    if (!removed || previous === TaskStatus.Processing)
      await this.signals.publishCancel(task.id).catch(() => undefined);
    // The tasks now first in the lines it left run at once rather than at their next look.
    for (const next of await this.providers.abandon(task)) void this.queue.promoteTaskJob(next);
    if (task.parts) await this.cancelParts(task.id);
  }

  /** Cancels the parts of a split task that have not finished (best effort: each part stands alone). */
  async cancelParts(parentId: string): Promise<number> {
    let cancelled = 0;
    for (const part of await this.tasks.findParts(parentId)) {
      if (isTerminal(part.status)) continue;
      const stopped = await this.stateMachine.cancel(part.id);
      if (!stopped) continue;
      cancelled++;
      await this.stop(stopped, part.status).catch((err: Error) =>
        this.logger.warn({ taskId: part.id }, `part not stopped cleanly: ${err.message}`),
      );
    }
    return cancelled;
  }

  /** Runs a failed or cancelled task again; attempts keep counting. */
  async retry(user: AuthUser, id: string): Promise<TaskResponseDto> {
    const task = await this.findOwned(user, id);
    if (task.status !== TaskStatus.Failed && task.status !== TaskStatus.Cancelled) {
      throw new DomainException(
        ErrorCode.InvalidTransition,
        `only failed or cancelled tasks can be retried; task ${id} is ${task.status}`,
        { status: task.status },
      );
    }
    this.queue.assertAvailable();
    const price = this.credits.enabled ? this.credits.priceOf(task) : 0;
    if (price > 0) {
      // Checked before any part is touched; the hold itself is taken with the task's own change, below.
      const balance = (await this.credits.findAccount(task.userId))?.balance ?? 0;
      if (balance < price) throw insufficientCredits(price, balance);
    }
    // The previous run's job may still be in Redis (kept for QUEUE_JOB_TTL) and would make the new add a no-op.
    if (!(await this.queue.removeTaskJob(id))) {
      throw new DomainException(ErrorCode.InvalidTransition, `task ${id} is still being stopped; retry shortly`);
    }
    // A split task runs again with the parts that did not complete; the completed ones keep their clips.
    for (const part of task.parts ? await this.tasks.findParts(id) : []) {
      if (part.status !== TaskStatus.Failed && part.status !== TaskStatus.Cancelled) continue;
      if (await this.queue.removeTaskJob(part.id)) await this.stateMachine.retry(part.id);
    }
    // With credits, the task's price is held again in the transaction that requeues it: short of it (spent since
    // the check above), 403 and the task stays as it was (parts requeued meanwhile run, and a later retry keeps them).
    const requeued = await this.stateMachine.retry(
      id,
      price > 0
        ? (tx, moved) =>
            this.credits.holdOn(tx, moved.userId, [
              { taskId: moved.id, batchId: moved.batchId, amount: price, reason: `${moved.type} retried` },
            ])
        : undefined,
    );
    if (!requeued) throw new DomainException(ErrorCode.InvalidTransition, `task ${id} changed status; reload it`);
    await this.queue.enqueueTaskOrDefer(requeued);
    return toTaskResponse(requeued);
  }

  async result(user: AuthUser, id: string): Promise<TaskResult> {
    const task = await this.findOwned(user, id);
    switch (task.status) {
      case TaskStatus.Completed:
        return {
          state: 'completed',
          body: { id: task.id, status: task.status, output: (await this.withFreshLinks(task)).output },
        };
      case TaskStatus.Failed:
      case TaskStatus.Cancelled:
        throw new DomainException(ErrorCode.TaskFailed, `task ${id} is ${task.status}`, {
          id: task.id,
          status: task.status,
          error: task.error ? { code: task.error.code, message: task.error.message } : null,
        });
      case TaskStatus.Pending:
      case TaskStatus.Queued:
      case TaskStatus.Processing:
        return { state: 'pending', body: { id: task.id, status: task.status, status_url: `${TASKS_PATH}/${task.id}` } };
    }
  }

  /** QUOTA_MAX_ACTIVE_TASKS: 429 naming the count and the cap when `adding` more would pass it. */
  private assertWithinQuota(active: number, adding: number): void {
    const max = this.config.quotaMaxActiveTasks;
    if (active + adding > max) {
      throw new DomainException(
        ErrorCode.QuotaExceeded,
        `you have ${active} unfinished tasks and the limit is ${max}: wait for some to finish (or cancel them)`,
        { active, limit: max },
      );
    }
  }

  /**
   * Every URL the platform will fetch or call for this task passes the URL guard now (the media guard for inputs,
   * which also checks MEDIA_ALLOWED_PORTS): 400 naming the field.
   */
  private assertReachableUrls(input: Record<string, unknown>, webhookUrl?: string): void {
    const problems: FieldProblem[] = [];
    const visit = (value: unknown, path: string, guard: UrlGuard) => {
      if (typeof value === 'string' && /(^|\.|_)urls?$|^url_|\.url_/.test(path.replace(/\[\d+\]/g, ''))) {
        // upload: and data: references are not fetched from anywhere (checked by their own rules).
        if (UPLOAD_REFERENCE.test(value) || value.startsWith('data:')) return;
        const problem = guard.problem(value);
        if (problem) problems.push({ field: path, message: `${path} ${problem}` });
      } else if (Array.isArray(value)) {
        value.forEach((v, i) => visit(v, `${path}[${i}]`, guard));
      } else if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) visit(v, path ? `${path}.${k}` : k, guard);
      }
    };
    visit(input, '', this.mediaGuard);
    if (webhookUrl !== undefined) visit(webhookUrl, 'webhook_url', this.guard);
    if (problems.length) throw new ValidationException(problems);
  }

  /**
   * The `data:` URLs of one task hold at most IMAGE_INLINE_MAX_BYTES of images together (decoded): 400 naming the
   * field that goes past it (an upload carries more).
   */
  private assertInlineImagesFit(input: Record<string, unknown>): void {
    const max = this.config.imageInlineMaxBytes;
    let total = 0;
    for (const [field, value] of inlineImages(input)) {
      total += Math.floor((value.length - value.indexOf(',') - 1) * 0.75);
      if (total > max) {
        throw new ValidationException([
          {
            field,
            message: `${field}: inline images of a task may hold ${max} bytes together (IMAGE_INLINE_MAX_BYTES); upload bigger ones (POST /api/v1/media/uploads) and pass upload:<id>`,
          },
        ]);
      }
    }
  }

  /** Stored file links expire (FILE_URL_TTL): every read hands out freshly signed ones. */
  private async withFreshLinks(task: TaskEntity): Promise<TaskEntity> {
    const files = task.output?.files;
    if (!Array.isArray(files) || files.length === 0) return task;
    const fresh = await Promise.all(
      files.map(async (f: { key?: string; url?: string }) => {
        if (typeof f?.key !== 'string') return f;
        try {
          return { ...f, url: await this.storage.signedUrl(f.key) };
        } catch {
          return f;
        }
      }),
    );
    return Object.assign(Object.create(Object.getPrototypeOf(task) as object) as TaskEntity, task, {
      output: { ...task.output, files: fresh },
    });
  }

  private async findOwned(user: AuthUser, id: string): Promise<TaskEntity> {
    if (!isUuid(id)) throw new NotFoundException('task', id);
    const task = await this.tasks.findOwned(id, user.isAdmin ? undefined : user.id);
    if (!task) throw new NotFoundException('task', id);
    return task;
  }

  private alreadyFinished(task: TaskEntity): DomainException {
    return new DomainException(ErrorCode.InvalidTransition, `task ${task.id} is already ${task.status}`, {
      status: task.status,
    });
  }
}

function extractInput(dto: TaskCreateBaseDto): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dto)) {
    if (value === undefined || (COMMON_FIELDS as readonly string[]).includes(key)) continue;
    // "best" pins no model: routing chooses, and the task's input says nothing of a model.
    if (key === 'model' && value === BEST_MODEL) continue;
    input[key] = value;
  }
  // Class instances (nested DTOs) become plain JSON.
  return JSON.parse(JSON.stringify(input)) as Record<string, unknown>;
}

/** The time left until `runAt` (ms), or undefined when the task may start now. */
export function delayUntil(runAt: Date | null | undefined, now = Date.now()): number | undefined {
  const left = runAt ? runAt.getTime() - now : 0;
  return left > 0 ? left : undefined;
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The image `data:` URLs of an input, with their fields' paths. */
function inlineImages(input: Record<string, unknown>): [string, string][] {
  const found: [string, string][] = [];
  for (const [key, value] of Object.entries(input)) {
    if (typeof value === 'string' && value.startsWith('data:')) found.push([key, value]);
    else if (Array.isArray(value)) {
      value.forEach((v, i) => typeof v === 'string' && v.startsWith('data:') && found.push([`${key}[${i}]`, v]));
    }
  }
  return found;
}
