import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityMetadata, QueryRunner, Repository, ValueTransformer } from 'typeorm';
import { GroupCommit } from '../common/group-commit';
import { preparedQuery } from '../database/prepared';
import { payloadSql } from '../events/event-payload';
import { TaskEntity } from './entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from './task.enums';

export interface TaskListQuery {
  userId?: string; // undefined: every user's tasks (admin scope)
  type?: TaskType;
  status?: TaskStatus;
  createdAfter?: Date;
  createdBefore?: Date;
  /** The parts of this split task; undefined: the tasks clients submitted (parts left out). */
  parentId?: string;
  limit: number;
  after?: { createdAt: Date; id: string };
}

/** Fields a transition may set besides the status. */
export type TaskPatch = Partial<
  Pick<
    TaskEntity,
    | 'progress'
    | 'output'
    | 'error'
    | 'provider'
    | 'costAmount'
    | 'costCurrency'
    | 'cached'
    | 'providerJob'
    | 'startedAt'
    | 'completedAt'
  >
>;

/** A task as a transition left it, and the webhook delivery its event made (null: no URL, or filtered out). */
export interface Transitioned {
  task: TaskEntity;
  deliveryId: string | null;
}

interface TransitionShape {
  from: readonly TaskStatus[];
  to: TaskStatus;
  fields: (keyof TaskPatch)[];
  event: TaskEventType | null;
  incrementAttempts: boolean;
}

/**
 * Wraps a statement that writes a task row (`… RETURNING *`) so that the same statement also writes the webhook
 * delivery of the event it makes (the outbox): the row's URL, the event past the row's filter, the payload built
 * from the row. `event` is the SQL parameter holding the event type. Adds `webhook_delivery_id` to each row.
 */
function withDeliveries(statement: string, event: string): string {
  return `WITH u AS (${statement}),
          d AS (
            INSERT INTO webhook_deliveries (id, task_id, user_id, event_type, sequence, url, body, next_attempt_at,
                                            created_at, updated_at)
            SELECT gen_random_uuid(), u.id, u.user_id, ${event}::text, u.event_seq, u.webhook_url,
                   ${payloadSql('u', event)}, u.updated_at, u.updated_at, u.updated_at
              FROM u
             WHERE u.webhook_url IS NOT NULL AND (u.webhook_events IS NULL OR ${event}::text = ANY(u.webhook_events))
            RETURNING id, task_id)
          SELECT u.*, d.id AS webhook_delivery_id FROM u LEFT JOIN d ON d.task_id = u.id`;
}

/** The INSERT of a new task; with a webhook URL, wrapped so that it writes the task.created delivery too. */
function insertStatement(task: TaskEntity): { sql: string; params: unknown[] } {
  const insert = `INSERT INTO tasks (id, user_id, type, status, priority, progress, input, options, webhook_url,
                      webhook_secret, webhook_events, metadata, event_seq, attempts, cached, created_at, updated_at,
                      batch_id, parent_id, part_index)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17, $18,
             $19, $20)`;
  const params = [
    task.id,
    task.userId,
    task.type,
    task.status,
    task.priority,
    task.progress,
    JSON.stringify(task.input),
    JSON.stringify(task.options),
    task.webhookUrl,
    task.webhookSecret ?? null,
    task.webhookEvents,
    task.metadata === null ? null : JSON.stringify(task.metadata),
    task.eventSeq,
    task.attempts,
    task.cached,
    task.createdAt,
    task.updatedAt,
    task.batchId ?? null,
    task.parentId ?? null,
    task.partIndex ?? null,
  ];
  if (!task.webhookUrl) return { sql: insert, params };
  return { sql: withDeliveries(`${insert} RETURNING *`, '$21'), params: [...params, TaskEventType.Created] };
}

interface PendingTransition {
  id: string;
  at: Date;
  patch: TaskPatch;
}

/** Splits items into consecutive rounds in which no id repeats (almost always one round: the items themselves). */
function distinctRounds(items: PendingTransition[]): PendingTransition[][] {
  const rounds: { ids: Set<string>; items: PendingTransition[] }[] = [];
  for (const item of items) {
    let round = rounds.find((r) => !r.ids.has(item.id));
    if (!round) rounds.push((round = { ids: new Set(), items: [] }));
    round.ids.add(item.id);
    round.items.push(item);
  }
  return rounds.map((r) => r.items);
}

const PATCHABLE: (keyof TaskPatch)[] = [
  'progress',
  'output',
  'error',
  'provider',
  'costAmount',
  'costCurrency',
  'cached',
  'providerJob',
  'startedAt',
  'completedAt',
];

/** Postgres access for tasks, with intention-revealing methods instead of ad-hoc queries in services. */
@Injectable()
export class TasksRepository {
  private readonly repo: Repository<TaskEntity>;
  private readonly meta: EntityMetadata;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.repo = dataSource.getRepository(TaskEntity);
    this.meta = dataSource.getMetadata(TaskEntity);
  }

  /**
   * The submit path's one write, as a single plain INSERT: the query builder would add a RETURNING clause for the
   * column defaults and cost more CPU than the rest of the request.
   */
  async insert(task: TaskEntity): Promise<{ deliveryId: string | null }> {
    const { sql, params } = insertStatement(task);
    // The task.created delivery is written with the task: one statement, nothing to lose in between.
    const rows = await this.returning(sql, params);
    return { deliveryId: (rows[0]?.webhook_delivery_id as string | null) ?? null };
  }

  /** The same write as `insert`, on a caller's transaction (a batch: its row and all its tasks commit together). */
  async insertOn(runner: QueryRunner, task: TaskEntity): Promise<{ deliveryId: string | null }> {
    const { sql, params } = insertStatement(task);
    const { records } = await runner.query(sql, params, true);
    const rows = records as Record<string, unknown>[];
    return { deliveryId: (rows[0]?.webhook_delivery_id as string | null) ?? null };
  }

  /** Runs `work` in one transaction on a query runner of its own: committed when it resolves, rolled back if not. */
  async transaction<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      const result = await work(runner);
      await runner.commitTransaction();
      return result;
    } catch (err) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw err;
    } finally {
      await runner.release();
    }
  }

  /** The tasks of a batch, oldest first. */
  findByBatch(batchId: string): Promise<TaskEntity[]> {
    return this.repo.find({ where: { batchId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  /**
   * A user's unfinished tasks (pending, queued or processing), counted on a transaction that first takes the user's
   * quota lock (released at commit), so that a concurrent submit of the same user counts after this one's inserts.
   * Parts of a split task are the platform's doing, not the user's: the task they belong to counts once.
   */
  async lockAndCountActive(runner: QueryRunner, userId: string): Promise<number> {
    await runner.query(`SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $1, 0))`, [userId]);
    const rows = (await runner.query(
      `SELECT count(*)::int AS n FROM tasks
        WHERE user_id = $1 AND status IN ('pending', 'queued', 'processing') AND parent_id IS NULL`,
      [userId],
    )) as { n: number }[];
    return rows[0].n;
  }

  findById(id: string): Promise<TaskEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** The parts of a split task, in their order. */
  findParts(parentId: string): Promise<TaskEntity[]> {
    return this.repo.find({ where: { parentId }, order: { partIndex: 'ASC' } });
  }

  /**
   * Splits a running task: records the number of parts on it and writes the part tasks, in one transaction. Safe to
   * repeat (a worker that died halfway runs it again): parts already written stay as they are. False when the task
   * is no longer processing (cancelled meanwhile), or was split into another number of parts.
   */
  async split(parentId: string, parts: TaskEntity[]): Promise<boolean> {
    return this.transaction(async (runner) => {
      const marked = (await runner.query(
        `WITH u AS (UPDATE tasks SET parts = $2, updated_at = now()
                     WHERE id = $1 AND status = 'processing' AND (parts IS NULL OR parts = $2) RETURNING id)
         SELECT id FROM u`,
        [parentId, parts.length],
      )) as unknown[];
      if (marked.length === 0) return false;
      for (const part of parts) {
        const { sql, params } = insertStatement(part);
        await runner.query(`${sql} ON CONFLICT (parent_id, part_index) WHERE parent_id IS NOT NULL DO NOTHING`, params);
      }
      return true;
    });
  }

  /** The task when `userId` owns it (or when `userId` is undefined: admin); null otherwise, so callers answer 404. */
  findOwned(id: string, userId?: string): Promise<TaskEntity | null> {
    return this.repo.findOneBy(userId === undefined ? { id } : { id, userId });
  }

  /** Newest first, keyset-paginated on (created_at, id). Fetches one extra row to know whether a next page exists. */
  async list(query: TaskListQuery): Promise<{ rows: TaskEntity[]; hasMore: boolean }> {
    // Parts of split tasks are reached through the task they belong to.
    const qb = this.repo.createQueryBuilder('t');
    if (query.parentId) qb.where('t.parent_id = :parentId', { parentId: query.parentId });
    else qb.where('t.parent_id IS NULL');
    if (query.userId !== undefined) qb.andWhere('t.user_id = :userId', { userId: query.userId });
    if (query.type) qb.andWhere('t.type = :type', { type: query.type });
    if (query.status) qb.andWhere('t.status = :status', { status: query.status });
    if (query.createdAfter) qb.andWhere('t.created_at > :createdAfter', { createdAfter: query.createdAfter });
    if (query.createdBefore) qb.andWhere('t.created_at < :createdBefore', { createdBefore: query.createdBefore });
    if (query.after) {
      qb.andWhere('(t.created_at, t.id) < (:afterCreated, :afterId)', {
        afterCreated: query.after.createdAt,
        afterId: query.after.id,
      });
    }
    const rows = await qb
      .orderBy('t.created_at', 'DESC')
      .addOrderBy('t.id', 'DESC')
      .limit(query.limit + 1)
      .getMany();
    return { rows: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
  }

  /** Queued tasks that run before this one: higher priority, or same priority and older. */
  async queuePosition(task: TaskEntity): Promise<number> {
    const rank = `CASE priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 2 WHEN 'medium' THEN 3 ELSE 4 END`;
    const [row] = await this.dataSource.query<{ ahead: string }[]>(
      `SELECT count(*) AS ahead FROM tasks
        WHERE status = 'queued' AND id <> $1
          AND (${rank} < $2 OR (${rank} = $2 AND created_at < $3))`,
      [task.id, { urgent: 1, high: 2, medium: 3, low: 4 }[task.priority], task.createdAt],
    );
    return Number(row.ahead) + 1;
  }

  /**
   * The conditional update behind every status change: sets `status` (and the patch) only if the row is still in
   * one of `from`, bumping `event_seq` when it makes an `event`, whose webhook delivery row (if the task has a URL
   * and its filter lets the event through) the same statement writes. Returns the updated row and that delivery's
   * id, or null when the task was not in an expected status (someone else moved it first). Concurrent transitions
   * of the same shape share one statement (group commit): each row's guard still applies to that row alone.
   */
  transition(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: TaskPatch,
    opts: { event: TaskEventType | null; incrementAttempts?: boolean; at: Date },
  ): Promise<Transitioned | null> {
    const fields = PATCHABLE.filter((key) => key in patch);
    const shape: TransitionShape = {
      from,
      to,
      fields,
      event: opts.event,
      incrementAttempts: opts.incrementAttempts ?? false,
    };
    return this.transitions.submit(JSON.stringify(shape), { id, at: opts.at, patch });
  }

  private readonly transitions = new GroupCommit<PendingTransition, Transitioned | null>((key, items) =>
    this.applyTransitions(JSON.parse(key) as TransitionShape, items),
  );

  /** One UPDATE … FROM jsonb_to_recordset for a batch of same-shaped transitions; a task id at most once per statement. */
  private async applyTransitions(shape: TransitionShape, items: PendingTransition[]): Promise<(Transitioned | null)[]> {
    const columns = shape.fields.map((key) => this.meta.findColumnWithPropertyName(key)!);
    const sets = ['status = $2', 'updated_at = v.at'];
    if (shape.event) sets.push('event_seq = t.event_seq + 1');
    if (shape.incrementAttempts) sets.push('attempts = t.attempts + 1');
    const record = ['id uuid', 'at timestamptz'];
    for (const column of columns) {
      sets.push(`${column.databaseName} = v.${column.databaseName}`);
      record.push(`${column.databaseName} ${column.type as string}`);
    }
    const update = `UPDATE tasks AS t SET ${sets.join(', ')}
                      FROM jsonb_to_recordset($1::jsonb) AS v(${record.join(', ')})
                     WHERE t.id = v.id AND t.status = ANY($3) RETURNING t.*`;
    const sql = shape.event ? withDeliveries(update, '$4') : update;
    const params = (rows: unknown[]) => [
      JSON.stringify(rows),
      shape.to,
      shape.from,
      ...(shape.event ? [shape.event] : []),
    ];
    const results = new Map<PendingTransition, Transitioned | null>();
    // Rounds of distinct ids: a second transition of the same task must see the first one's result.
    for (const round of distinctRounds(items)) {
      const rows = round.map((item) => {
        const row: Record<string, unknown> = { id: item.id, at: item.at };
        columns.forEach((column, i) => (row[column.databaseName] = item.patch[shape.fields[i]] ?? null));
        return row;
      });
      const updated = await this.returning(sql, params(rows));
      const byId = new Map(updated.map((row) => [row.id as string, row]));
      for (const item of round) {
        const row = byId.get(item.id);
        results.set(item, row ? this.transitioned(row) : null);
      }
    }
    return items.map((item) => results.get(item) ?? null);
  }

  /** Progress of a running task, bumping the event sequence; null when it is no longer processing. */
  async updateProgress(id: string, progress: number, at: Date): Promise<Transitioned | null> {
    const rows = await this.returning(
      withDeliveries(
        `UPDATE tasks SET progress = $2, event_seq = event_seq + 1, updated_at = $3
          WHERE id = $1 AND status = 'processing' RETURNING *`,
        '$4',
      ),
      [id, progress, at, TaskEventType.Progress],
    );
    return rows.length ? this.transitioned(rows[0]) : null;
  }

  /**
   * The progress of a split task from its parts (the share completed), only ever forward: concurrent parts' updates
   * are serialized by the row lock, and one that would not raise it (an older count) changes nothing. Null when
   * nothing changed or the task is no longer processing.
   */
  async updatePartsProgress(parentId: string, at: Date): Promise<Transitioned | null> {
    const rows = await this.returning(
      withDeliveries(
        `UPDATE tasks SET progress = s.share, event_seq = event_seq + 1, updated_at = $2
           FROM (SELECT count(*) FILTER (WHERE status = 'completed')::real / NULLIF(count(*), 0) AS share
                   FROM tasks WHERE parent_id = $1) AS s
          WHERE tasks.id = $1 AND tasks.status = 'processing' AND s.share > tasks.progress
          RETURNING tasks.*`,
        '$3',
      ),
      [parentId, at, TaskEventType.Progress],
    );
    return rows.length ? this.transitioned(rows[0]) : null;
  }

  /** Remembers an async provider's job on a running task, so any worker can poll it (and none submits twice). */
  async saveProviderJob(id: string, provider: string, job: Record<string, unknown> | null): Promise<boolean> {
    const rows = await this.returning(
      `UPDATE tasks SET provider = $2, provider_job = $3::jsonb, updated_at = now()
        WHERE id = $1 AND status = 'processing' RETURNING id`,
      [id, provider, job === null ? null : JSON.stringify(job)],
    );
    return rows.length > 0;
  }

  /**
   * The place a running task's job holds in its provider's own queue (null: out of it, running), kept on the stored
   * provider job so every API process can show it as `queue_position`.
   */
  async saveProviderQueuePosition(id: string, position: number | null): Promise<void> {
    await this.dataSource.query(
      `UPDATE tasks
          SET provider_job = CASE WHEN $2::int IS NULL THEN provider_job - 'queue_position'
                                  ELSE provider_job || jsonb_build_object('queue_position', $2::int) END,
              updated_at = now()
        WHERE id = $1 AND status = 'processing' AND provider_job IS NOT NULL`,
      [id, position],
    );
  }

  /** Unfinished tasks not touched for `olderThanMs`: candidates for the reconciler. */
  findStale(olderThanMs: number, limit: number): Promise<TaskEntity[]> {
    return this.repo
      .createQueryBuilder('t')
      .where('t.status IN (:...statuses)', { statuses: [TaskStatus.Queued, TaskStatus.Processing] })
      .andWhere('t.updated_at < :before', { before: new Date(Date.now() - olderThanMs) })
      .orderBy('t.updated_at', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** Marks a reconciled task as seen, so the next pass looks at others first. */
  async touch(id: string, status: TaskStatus): Promise<void> {
    await this.dataSource.query(`UPDATE tasks SET updated_at = now() WHERE id = $1 AND status = $2`, [id, status]);
  }

  /** Aggregates for GET /statistics, over one user's tasks or (undefined) everyone's. */
  async statistics(userId?: string): Promise<{
    byStatus: Record<string, number>;
    meanDurationMsByType: Record<string, number>;
    costByProvider: Record<string, number>;
    queuedByPriority: Record<string, number>;
  }> {
    const params = userId === undefined ? [] : [userId];
    const own = userId === undefined ? 'true' : 'user_id = $1';
    // Counts and durations are of the tasks clients submitted (parts of split tasks are inside them); costs are of
    // the tasks that ran at a provider (a split task's cost is the sum of its parts').
    const submitted = `${own} AND parent_id IS NULL`;
    const ran = `${own} AND parts IS NULL`;
    const [byStatus, durations, costs, queued] = await Promise.all([
      this.dataSource.query<{ status: string; n: string }[]>(
        `SELECT status, count(*) AS n FROM tasks WHERE ${submitted} GROUP BY status`,
        params,
      ),
      this.dataSource.query<{ type: string; ms: string }[]>(
        `SELECT type, avg(extract(epoch FROM completed_at - started_at) * 1000) AS ms FROM tasks
          WHERE ${submitted} AND status = 'completed' AND started_at IS NOT NULL GROUP BY type`,
        params,
      ),
      this.dataSource.query<{ provider: string; total: string }[]>(
        `SELECT provider, sum(cost_amount) AS total FROM tasks WHERE ${ran} AND provider IS NOT NULL GROUP BY provider`,
        params,
      ),
      this.dataSource.query<{ priority: string; n: string }[]>(
        `SELECT priority, count(*) AS n FROM tasks WHERE ${submitted} AND status = 'queued' GROUP BY priority`,
        params,
      ),
    ]);
    return {
      byStatus: Object.fromEntries(byStatus.map((r) => [r.status, Number(r.n)])),
      meanDurationMsByType: Object.fromEntries(durations.map((r) => [r.type, Math.round(Number(r.ms))])),
      costByProvider: Object.fromEntries(costs.map((r) => [r.provider, Number(r.total ?? 0)])),
      queuedByPriority: Object.fromEntries(queued.map((r) => [r.priority, Number(r.n)])),
    };
  }

  /** Rows of a hot statement (… RETURNING), run prepared: planned once per connection. */
  private returning(sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    return preparedQuery(this.dataSource, sql, params);
  }

  private transitioned(row: Record<string, unknown>): Transitioned {
    return { task: this.fromRow(row), deliveryId: (row.webhook_delivery_id as string | null) ?? null };
  }

  private fromRow(row: Record<string, unknown>): TaskEntity {
    const task = new TaskEntity();
    for (const column of this.meta.columns) {
      if (!column.isSelect) continue;
      let value = row[column.databaseName];
      if (column.transformer) value = (column.transformer as ValueTransformer).from(value);
      (task as unknown as Record<string, unknown>)[column.propertyName] = value;
    }
    return task;
  }
}
