import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityMetadata, Repository } from 'typeorm';
import { GroupCommit } from '../common/group-commit';
import { CreditsRepository } from '../credits/credits.repository';
import { EntityRows } from '../database/entity-rows';
import { Sql, SqlClient, Tx } from '../database/sql-client';
import { WebhookDeliveryEntity } from '../webhooks/entities/webhook-delivery.entity';
import { deliveryOfTaskEvent } from '../webhooks/task-event-delivery';
import { TaskEntity } from './entities/task.entity';
import { QUEUE_PRIORITY, TaskEventType, TaskPriority, TaskStatus, TaskType } from './task.enums';

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

/** Fields a transition may set besides the status (and the SQL of a transition sets them in this order). */
/** Submit INSERTs one API process has in flight at once (each on a connection of its pool); see `insert`. */
const INSERT_WRITES = 4;

const PATCHABLE = [
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
] as const satisfies readonly (keyof TaskEntity)[];

export type TaskPatch = Partial<Pick<TaskEntity, (typeof PATCHABLE)[number]>>;

/** Priorities in the order their tasks run, from QUEUE_PRIORITY (lower runs first): a task's rank is its index. */
const PRIORITIES_IN_RUN_ORDER = (Object.keys(QUEUE_PRIORITY) as TaskPriority[]).sort(
  (a, b) => QUEUE_PRIORITY[a] - QUEUE_PRIORITY[b],
);

/** The events of the statuses a task ends in: their transitions settle the task's credit hold. */
const SETTLING_EVENTS: ReadonlySet<TaskEventType> = new Set([
  TaskEventType.Completed,
  TaskEventType.Failed,
  TaskEventType.Cancelled,
]);

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

/**
 * Postgres access for tasks, with intention-revealing methods instead of ad-hoc queries in services. Reads go through
 * TypeORM's repository; the writes that make events go through SqlClient, each with the webhook deliveries of its
 * event in the same transaction (the outbox: an event is never lost between the task's change and its delivery).
 */
@Injectable()
export class TasksRepository {
  private readonly repo: Repository<TaskEntity>;
  private readonly meta: EntityMetadata;
  private readonly rows: EntityRows<TaskEntity>;
  private readonly deliveries: EntityRows<WebhookDeliveryEntity>;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly sql: SqlClient,
    private readonly credits: CreditsRepository,
  ) {
    this.repo = dataSource.getRepository(TaskEntity);
    this.meta = dataSource.getMetadata(TaskEntity);
    this.rows = sql.table(TaskEntity);
    this.deliveries = sql.table(WebhookDeliveryEntity);
  }

  /**
   * The submit path's one write: the task and, when it has a URL for task.created, that delivery. Concurrent submits
   * share the statement (group commit: up to INSERT_WRITES in flight, the submits that arrive meanwhile go together in
   * the next), so a busy API process makes a few multi-row INSERTs and commits instead of one per request.
   */
  async insert(task: TaskEntity): Promise<{ deliveryId: string | null }> {
    return { deliveryId: await this.inserts.submit('insert', task) };
  }

  /** The same write as `insert`, on a caller's transaction (a batch: its row and all its tasks commit together). */
  async insertOn(tx: Sql, task: TaskEntity): Promise<{ deliveryId: string | null }> {
    const [deliveryId] = await this.insertAll(tx, [task]);
    return { deliveryId };
  }

  // One task's own failure (say, its flow run deleted meanwhile) must not fail the others: each alone again.
  private readonly inserts = new GroupCommit<TaskEntity, string | null>(
    (_key, tasks) => this.insertAll(this.sql, tasks),
    { parallel: INSERT_WRITES, isolateFailures: true },
  );

  /** The tasks and the deliveries of their task.created (those that want one) in one statement; the delivery ids. */
  private async insertAll(tx: Sql, tasks: TaskEntity[]): Promise<(string | null)[]> {
    const deliveries = tasks.map((task) => deliveryOfTaskEvent(TaskEventType.Created, task));
    const wanted = deliveries.filter((d): d is WebhookDeliveryEntity => d !== null);
    if (!wanted.length) {
      await tx.rows(this.rows.insertSql(), [this.rows.records(tasks)]);
    } else {
      // Both tables in one statement: the deliveries' bodies are known before the insert (the tasks are new).
      await tx.rows(`WITH t AS (${this.rows.insertSql()}) ${this.deliveries.insertSql(2)}`, [
        this.rows.records(tasks),
        this.deliveries.records(wanted),
      ]);
    }
    return deliveries.map((d) => d?.id ?? null);
  }

  /** Runs `work` in one transaction: committed when it resolves, rolled back if not. */
  transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> {
    return this.sql.transaction(work);
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
  async lockAndCountActive(tx: Sql, userId: string): Promise<number> {
    await tx.rows(`SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $1, 0))`, [userId]);
    const [row] = await tx.rows<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks
        WHERE user_id = $1 AND status IN ('pending', 'queued', 'processing') AND parent_id IS NULL`,
      [userId],
    );
    return row.n;
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
    return this.sql.transaction(async (tx) => {
      const marked = await tx.rows(
        `UPDATE tasks SET parts = $2, updated_at = now()
          WHERE id = $1 AND status = 'processing' AND (parts IS NULL OR parts = $2) RETURNING id`,
        [parentId, parts.length],
      );
      if (marked.length === 0) return false;
      await tx.rows(
        `${this.rows.insertSql()} ON CONFLICT (parent_id, part_index) WHERE parent_id IS NOT NULL DO NOTHING`,
        [this.rows.records(parts)],
      );
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
    const [row] = await this.sql.rows<{ ahead: number }>(
      `SELECT count(*)::int AS ahead FROM tasks
        WHERE status = 'queued' AND id <> $1
          AND (array_position($4::text[], priority) < $2
               OR (array_position($4::text[], priority) = $2 AND created_at < $3))`,
      [task.id, PRIORITIES_IN_RUN_ORDER.indexOf(task.priority) + 1, task.createdAt, PRIORITIES_IN_RUN_ORDER],
    );
    return row.ahead + 1;
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

  /**
   * The same conditional update as `transition`, for one task on a transaction of its own (not grouped), with `also`
   * run in that transaction once the row has moved: when `also` throws, the transition is rolled back with it (a
   * retry that must hold the task's price again, or not happen). Null when the task was not in an expected status.
   */
  transitionWith(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: TaskPatch,
    opts: { event: TaskEventType | null; at: Date; also: (tx: Sql, task: TaskEntity) => Promise<void> },
  ): Promise<Transitioned | null> {
    const shape: TransitionShape = {
      from,
      to,
      fields: PATCHABLE.filter((key) => key in patch),
      event: opts.event,
      incrementAttempts: false,
    };
    const { update, record } = this.updateOf(shape);
    return this.sql.transaction(async (tx) => {
      const [moved] = await this.withEventOn(tx, shape.event, (inner) =>
        inner.rows(update, [JSON.stringify([record({ id, at: opts.at, patch })]), shape.to, shape.from, [id]]),
      );
      if (moved) await opts.also(tx, moved.task);
      return moved ?? null;
    });
  }

  /** The statement of a transition shape, and the record of one item in its JSON parameter. */
  private updateOf(shape: TransitionShape): {
    update: string;
    record: (item: PendingTransition) => Record<string, unknown>;
  } {
    const columns = shape.fields.map((key) => this.meta.findColumnWithPropertyName(key)!);
    const sets = ['status = $2', 'updated_at = v.at'];
    if (shape.event) sets.push('event_seq = t.event_seq + 1');
    if (shape.incrementAttempts) sets.push('attempts = t.attempts + 1');
    const fields = ['id uuid', 'at timestamptz'];
    for (const column of columns) {
      sets.push(`${column.databaseName} = v.${column.databaseName}`);
      fields.push(`${column.databaseName} ${column.type as string}`);
    }
    // The rows are found by primary key only ($4: the ids), the status checked inside a CASE, which no index matches:
    // as a plain condition, a table whose statistics predate a backlog of queued tasks had Postgres read every task
    // in that status through its index (and hash them against the batch) on every transition.
    const update = `UPDATE tasks AS t SET ${sets.join(', ')}
                      FROM jsonb_to_recordset($1::jsonb) AS v(${fields.join(', ')})
                     WHERE t.id = v.id AND t.id = ANY($4::uuid[])
                       AND CASE WHEN t.status = ANY($3) THEN true ELSE false END
                    RETURNING t.*`;
    const record = (item: PendingTransition) => {
      const row: Record<string, unknown> = { id: item.id, at: item.at };
      columns.forEach((column, i) => (row[column.databaseName] = item.patch[shape.fields[i]] ?? null));
      return row;
    };
    return { update, record };
  }

  /** One UPDATE … FROM jsonb_to_recordset for a batch of same-shaped transitions; a task id at most once per statement. */
  private async applyTransitions(shape: TransitionShape, items: PendingTransition[]): Promise<(Transitioned | null)[]> {
    const { update, record } = this.updateOf(shape);
    const results = new Map<PendingTransition, Transitioned | null>();
    // Rounds of distinct ids: a second transition of the same task must see the first one's result.
    for (const round of distinctRounds(items)) {
      const rows = round.map(record);
      const moved = await this.writeWithEvent(shape.event, (tx) =>
        tx.rows(update, [JSON.stringify(rows), shape.to, shape.from, round.map((item) => item.id)]),
      );
      const byId = new Map(moved.map((m) => [m.task.id, m]));
      for (const item of round) results.set(item, byId.get(item.id) ?? null);
    }
    return items.map((item) => results.get(item) ?? null);
  }

  /** Progress of a running task, bumping the event sequence; null when it is no longer processing. */
  async updateProgress(id: string, progress: number, at: Date): Promise<Transitioned | null> {
    const [moved] = await this.writeWithEvent(TaskEventType.Progress, (tx) =>
      tx.rows(
        `UPDATE tasks SET progress = $2, event_seq = event_seq + 1, updated_at = $3
          WHERE id = $1 AND status = 'processing' RETURNING *`,
        [id, progress, at],
      ),
    );
    return moved ?? null;
  }

  /**
   * The progress of a split task from its parts (the share completed), only ever forward: concurrent parts' updates
   * are serialized by the row lock, and one that would not raise it (an older count) changes nothing. Null when
   * nothing changed or the task is no longer processing.
   */
  async updatePartsProgress(parentId: string, at: Date): Promise<Transitioned | null> {
    const [moved] = await this.writeWithEvent(TaskEventType.Progress, (tx) =>
      tx.rows(
        `UPDATE tasks SET progress = s.share, event_seq = event_seq + 1, updated_at = $2
           FROM (SELECT count(*) FILTER (WHERE status = 'completed')::real / NULLIF(count(*), 0) AS share
                   FROM tasks WHERE parent_id = $1) AS s
          WHERE tasks.id = $1 AND tasks.status = 'processing' AND s.share > tasks.progress
          RETURNING tasks.*`,
        [parentId, at],
      ),
    );
    return moved ?? null;
  }

  /**
   * Runs a write of task rows (`… RETURNING` the rows) that makes `event` for each row it returns and, in the same
   * transaction, writes the webhook delivery of that event for each row whose URL and filter want it. Without an
   * event (a return to the queue) the write runs alone.
   */
  private async writeWithEvent(
    event: TaskEventType | null,
    write: (tx: Sql) => Promise<Record<string, unknown>[]>,
  ): Promise<Transitioned[]> {
    if (!event) return (await write(this.sql)).map((row) => ({ task: this.rows.fromRow(row), deliveryId: null }));
    return this.sql.transaction((tx) => this.withEventOn(tx, event, write));
  }

  /**
   * `writeWithEvent` on a caller's transaction. A terminal event also settles the tasks' credit holds
   * (CREDITS_ENABLED) in that transaction, so a hold is never left open nor settled twice.
   */
  private async withEventOn(
    tx: Tx,
    event: TaskEventType | null,
    write: (tx: Sql) => Promise<Record<string, unknown>[]>,
  ): Promise<Transitioned[]> {
    const moved = (await write(tx)).map((row) => {
      const task = this.rows.fromRow(row);
      return { task, delivery: event ? deliveryOfTaskEvent(event, task) : null };
    });
    const deliveries = moved.flatMap((m) => (m.delivery ? [m.delivery] : []));
    // Not waited for: it goes to Postgres with the COMMIT (or the credit settlement) behind it.
    if (deliveries.length) tx.send(this.deliveries.insertSql(), [this.deliveries.records(deliveries)]);
    if (event && SETTLING_EVENTS.has(event) && this.credits.enabled && moved.length) {
      await this.credits.settleOn(
        tx,
        moved.map((m) => m.task),
      );
    }
    return moved.map((m) => ({ task: m.task, deliveryId: m.delivery?.id ?? null }));
  }

  /** Remembers an async provider's job on a running task, so any worker can poll it (and none submits twice). */
  async saveProviderJob(id: string, provider: string, job: Record<string, unknown> | null): Promise<boolean> {
    const rows = await this.sql.rows(
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
    await this.sql.rows(
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

  /**
   * Tasks whose stored files are still kept and that completed before `before` (OUTPUT_RETENTION_DAYS), oldest first.
   */
  async findKeptOutputsBefore(before: Date, limit: number): Promise<{ id: string; output: Record<string, unknown> }[]> {
    return this.sql.rows(
      `SELECT id, output FROM tasks
        WHERE output ? 'files' AND NOT output ? 'expired_at' AND completed_at < $1
        ORDER BY completed_at LIMIT $2`,
      [before, limit],
    );
  }

  /** Records that the task's stored files were deleted (`output.expired_at`); the rest of its output stays. */
  async markOutputExpired(id: string, at: Date): Promise<boolean> {
    const rows = await this.sql.rows(
      `UPDATE tasks SET output = output || jsonb_build_object('expired_at', $2::text), updated_at = now()
        WHERE id = $1 AND output ? 'files' AND NOT output ? 'expired_at' RETURNING id`,
      [id, at.toISOString()],
    );
    return rows.length > 0;
  }

  /** Marks a reconciled task as seen, so the next pass looks at others first. */
  async touch(id: string, status: TaskStatus): Promise<void> {
    await this.repo.update({ id, status }, { updatedAt: () => 'now()' });
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
      this.sql.rows<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM tasks WHERE ${submitted} GROUP BY status`,
        params,
      ),
      this.sql.rows<{ type: string; ms: string }>(
        `SELECT type, avg(extract(epoch FROM completed_at - started_at) * 1000) AS ms FROM tasks
          WHERE ${submitted} AND status = 'completed' AND started_at IS NOT NULL GROUP BY type`,
        params,
      ),
      this.sql.rows<{ provider: string; total: string }>(
        `SELECT provider, sum(cost_amount) AS total FROM tasks WHERE ${ran} AND provider IS NOT NULL GROUP BY provider`,
        params,
      ),
      this.sql.rows<{ priority: string; n: string }>(
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
}
