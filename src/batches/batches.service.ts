import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { FieldProblem, NotFoundException, ValidationException } from '../common/domain-exception';
import { isUuid } from '../common/uuid';
import { DTO_BY_TYPE, validateAs } from '../tasks/dto/task-dto-by-type';
import { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStatus } from '../tasks/task.enums';
import { TasksService } from '../tasks/tasks.service';
import { PageQueryDto } from '../common/page-query.dto';
import { encodeCursor, pageOf } from '../tasks/task.mapper';
import { BatchesRepository, BatchRow } from './batches.repository';
import { BATCH_ITEM_FIELDS, BatchCreateDto, BatchItemDto, MAX_BATCH_ITEMS } from './dto/batch-create.dto';
import {
  BatchCountsDto,
  BatchCreatedResponseDto,
  BatchListResponseDto,
  BatchResponseDto,
  BatchSummaryDto,
} from './dto/batch-response.dto';

export const BATCH_PATH = '/api/v1/media/batch';

function toBatchSummary(batch: BatchRow, counts: BatchCountsDto): BatchSummaryDto {
  return {
    id: batch.id,
    total: batch.total,
    counts,
    completed_at: batch.completedAt?.toISOString() ?? null,
    created_at: batch.createdAt.toISOString(),
    webhook_url: batch.webhookUrl,
    metadata: batch.metadata,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Batches (CONTRACT.md, Batch): up to 50 tasks submitted together. Every item is validated first, as its own
 * endpoint would, and then the batch row and all its tasks are written in one transaction: all or nothing.
 */
@Injectable()
export class BatchesService {
  constructor(
    private readonly tasks: TasksService,
    private readonly batches: BatchesRepository,
  ) {}

  async create(user: AuthUser, body: unknown): Promise<BatchCreatedResponseDto> {
    const batch = this.parseEnvelope(body);
    const id = randomUUID();
    const createdAt = new Date();
    const prepared: TaskEntity[] = [];
    const indexes: number[] = [];
    const problems: FieldProblem[] = [];
    batch.tasks.forEach((item, index) => {
      const result = this.prepareItem(user, item, { batchId: id, createdAt });
      if ('task' in result) {
        prepared.push(result.task);
        indexes.push(index);
      } else
        problems.push(
          ...result.problems.map((p) => ({ index, field: p.field, message: `tasks[${index}]: ${p.message}` })),
        );
    });
    for (const [i, task] of prepared.entries()) {
      const index = indexes[i];
      for (const p of await this.tasks.uploadProblems(user, task.input)) {
        problems.push({ index, field: `input_data.${p.field}`, message: `tasks[${index}]: ${p.message}` });
      }
    }
    if (problems.length) throw new ValidationException(problems);

    await this.tasks.createMany(user, prepared, (tx) =>
      this.batches.insertOn(tx, {
        id,
        userId: user.id,
        webhookUrl: batch.webhook_url ?? null,
        webhookSecret: batch.webhook_secret ?? null,
        metadata: batch.metadata ?? null,
        total: prepared.length,
        createdAt,
        completedAt: null,
      }),
    );
    return {
      batch_id: id,
      tasks: prepared.map((t) => ({ id: t.id, status: t.status })),
      status_url: `${BATCH_PATH}/${id}`,
    };
  }

  async get(user: AuthUser, id: string): Promise<BatchResponseDto> {
    if (!isUuid(id)) throw new NotFoundException('batch', id);
    const batch = await this.batches.findOwned(id, user.isAdmin ? undefined : user.id);
    if (!batch) throw new NotFoundException('batch', id);
    const tasks = await this.tasks.listBatch(id);
    const counts: BatchCountsDto = { queued: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const task of tasks) counts[task.status === TaskStatus.Pending ? 'queued' : task.status]++;
    return { ...toBatchSummary(batch, counts), tasks };
  }

  /** The caller's batches (scope=all: everyone's, admins only), newest first, without their tasks. */
  async list(user: AuthUser, query: PageQueryDto): Promise<BatchListResponseDto> {
    const { userId, after, limit } = pageOf(user, query);
    const { rows, hasMore } = await this.batches.list({ userId, after, limit });
    return {
      data: rows.map(({ batch, counts }) => toBatchSummary(batch, counts)),
      next_cursor: hasMore ? encodeCursor(rows[rows.length - 1].batch) : null,
    };
  }

  /** The body's own shape: a bare array of items, or `{tasks, webhook_url?, webhook_secret?, metadata?}`. */
  private parseEnvelope(body: unknown): BatchCreateDto {
    let batch: BatchCreateDto;
    if (Array.isArray(body)) {
      batch = Object.assign(new BatchCreateDto(), { tasks: body as unknown[] });
    } else if (isPlainObject(body)) {
      const { dto, problems } = validateAs(BatchCreateDto, body);
      if (problems.length) throw new ValidationException(problems);
      batch = dto;
    } else {
      throw new ValidationException([
        { field: 'tasks', message: 'the body must be an array of tasks or an object with a tasks array' },
      ]);
    }
    if (batch.tasks.length === 0) {
      throw new ValidationException([{ field: 'tasks', message: 'a batch needs at least one task' }]);
    }
    if (batch.tasks.length > MAX_BATCH_ITEMS) {
      throw new ValidationException([
        {
          field: 'tasks',
          message: `a batch holds at most ${MAX_BATCH_ITEMS} tasks; this one has ${batch.tasks.length}`,
        },
      ]);
    }
    if (batch.webhook_url !== undefined) {
      this.tasks.assertReachableUrl('webhook_url', batch.webhook_url);
      this.tasks.assertCanSign(batch.webhook_url, batch.webhook_secret);
    }
    return batch;
  }

  /**
   * One item, validated as its endpoint would validate it: the type's DTO over `input_data` and the item's own
   * fields, then the service's checks. Problems name the item's fields (`input_data.text`, `webhook_url`).
   */
  private prepareItem(
    user: AuthUser,
    item: unknown,
    opts: { batchId: string; createdAt: Date },
  ): { task: TaskEntity } | { problems: FieldProblem[] } {
    if (!isPlainObject(item)) return { problems: [{ field: '', message: 'each task must be an object' }] };
    const envelope = validateAs(BatchItemDto, item);
    if (envelope.problems.length) return { problems: envelope.problems };
    const own = Object.fromEntries(
      BATCH_ITEM_FIELDS.filter((key) => item[key] !== undefined).map((key) => [key, item[key]]),
    );
    const input = envelope.dto.input_data;
    const { dto, problems } = validateAs(DTO_BY_TYPE[envelope.dto.task_type], { ...input, ...own });
    // An item's own fields keep their names (also when missing: webhook_secret with webhook_url); input is input_data.
    const isOwn = (root: string) =>
      root in own || ((BATCH_ITEM_FIELDS as readonly string[]).includes(root) && !(root in input));
    const named = (list: FieldProblem[]) =>
      list.map((p) => ({ ...p, field: isOwn(p.field.split(/[.[]/)[0]) ? p.field : `input_data.${p.field}` }));
    if (problems.length) return { problems: named(problems) };
    try {
      return { task: this.tasks.prepare(user, envelope.dto.task_type, dto, opts) };
    } catch (err) {
      if (err instanceof ValidationException) return { problems: named(err.problems) };
      throw err;
    }
  }
}
