import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { LRUCache } from 'lru-cache';
import { DataSource, Repository } from 'typeorm';
import { EntityRows } from '../database/entity-rows';
import { Sql, SqlClient } from '../database/sql-client';
import {
  FlowEntity,
  FlowError,
  FlowRunEntity,
  FlowRunStatus,
  FlowStepEntity,
  FlowVersionEntity,
} from './entities/flow.entities';

const LIVE_RUN = `('queued', 'running', 'waiting')`;

/**
 * How long a flow read for a run (a hook's call, a step, an event) is kept in memory. A change made in this process
 * is seen at once; one made in another process, within this. Versions never change and are kept until evicted.
 */
export const FLOW_READ_CACHE_MS = 1000;

export interface Page<T> {
  rows: T[];
  hasMore: boolean;
}

/** How a step's try ended, as it is written. */
export type StepEnd =
  { status: 'completed'; output: unknown; response: unknown } | { status: 'failed'; error: FlowError };

/** The rows of flows, their versions, runs and steps. */
@Injectable()
export class FlowsRepository {
  private readonly flowRepo: Repository<FlowEntity>;
  private readonly versionRepo: Repository<FlowVersionEntity>;
  private readonly runRepo: Repository<FlowRunEntity>;
  private readonly stepRepo: Repository<FlowStepEntity>;
  private readonly flowRows: EntityRows<FlowEntity>;
  private readonly versionRows: EntityRows<FlowVersionEntity>;
  private readonly runRows: EntityRows<FlowRunEntity>;
  private readonly stepRows: EntityRows<FlowStepEntity>;

  /** Flows and versions read for runs (hot: every hook call, every step, every event); see FLOW_READ_CACHE_MS. */
  private readonly flowsById = new LRUCache<string, FlowEntity>({ max: 1000, ttl: FLOW_READ_CACHE_MS });
  private readonly flowsByHook = new LRUCache<string, FlowEntity>({ max: 1000, ttl: FLOW_READ_CACHE_MS });
  private readonly versions = new LRUCache<string, FlowVersionEntity>({ max: 1000 });
  /** Bumped by every write of a flow here: a read that began before it is not kept (it may be of the old row). */
  private generation = 0;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly sql: SqlClient,
  ) {
    this.flowRepo = dataSource.getRepository(FlowEntity);
    this.versionRepo = dataSource.getRepository(FlowVersionEntity);
    this.runRepo = dataSource.getRepository(FlowRunEntity);
    this.stepRepo = dataSource.getRepository(FlowStepEntity);
    this.flowRows = sql.table(FlowEntity);
    this.versionRows = sql.table(FlowVersionEntity);
    this.runRows = sql.table(FlowRunEntity);
    this.stepRows = sql.table(FlowStepEntity);
  }

  // --- definitions ---

  async insertFlow(flow: FlowEntity, version: FlowVersionEntity): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await tx.rows(this.flowRows.insertSql(), [this.flowRows.records([flow])]);
      await tx.rows(this.versionRows.insertSql(), [this.versionRows.records([version])]);
    });
    this.forget(flow.id);
  }

  /** A flow not deleted, when `userId` owns it (undefined: any owner, for admins). */
  findFlow(id: string, userId?: string): Promise<FlowEntity | null> {
    return this.flowRepo
      .createQueryBuilder('f')
      .where('f.id = :id AND f.deleted_at IS NULL', { id })
      .andWhere(userId === undefined ? '1 = 1' : 'f.user_id = :userId', { userId })
      .getOne();
  }

  /** A live flow as runs read it: from memory when read in the last FLOW_READ_CACHE_MS. */
  async findFlowForRun(id: string): Promise<FlowEntity | null> {
    const hit = this.flowsById.get(id);
    if (hit) return hit;
    const generation = this.generation;
    const flow = await this.findFlow(id);
    if (flow && generation === this.generation) this.flowsById.set(id, flow);
    return flow;
  }

  /** The live flow of an inbound hook (a hook's every call reads it): from memory as findFlowForRun. */
  async findFlowByHook(hookId: string): Promise<FlowEntity | null> {
    const hit = this.flowsByHook.get(hookId);
    if (hit) return hit;
    const generation = this.generation;
    const flow = await this.flowRepo
      .createQueryBuilder('f')
      .where('f.hook_id = :hookId AND f.deleted_at IS NULL', { hookId })
      .getOne();
    if (flow && generation === this.generation) this.flowsByHook.set(hookId, flow);
    return flow;
  }

  async findVersion(flowId: string, version: number): Promise<FlowVersionEntity | null> {
    const key = `${flowId}:${version}`;
    const hit = this.versions.get(key);
    if (hit) return hit;
    const found = await this.versionRepo.findOneBy({ flowId, version });
    if (found) this.versions.set(key, found);
    return found;
  }

  /** A flow written in this process: its runs read the change at once. */
  private forget(flowId: string): void {
    this.generation++;
    this.flowsById.delete(flowId);
    this.flowsByHook.clear();
  }

  async listFlows(q: {
    userId?: string;
    limit: number;
    after?: { createdAt: Date; id: string };
  }): Promise<Page<FlowEntity>> {
    const qb = this.flowRepo.createQueryBuilder('f').where('f.deleted_at IS NULL');
    if (q.userId !== undefined) qb.andWhere('f.user_id = :userId', { userId: q.userId });
    if (q.after) qb.andWhere('(f.created_at, f.id) < (:at, :id)', { at: q.after.createdAt, id: q.after.id });
    const rows = await qb
      .orderBy('f.created_at', 'DESC')
      .addOrderBy('f.id', 'DESC')
      .take(q.limit + 1)
      .getMany();
    return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
  }

  /** A new version of a flow: the row moves to it and the version's steps are kept. Null when the flow is gone. */
  async updateFlow(flow: FlowEntity, steps: unknown): Promise<FlowEntity | null> {
    const updated = await this.sql.transaction(async (tx) => {
      const [row] = await tx.rows(
        `UPDATE flows SET version = version + 1, name = $2, description = $3, trigger = $4::jsonb, hook_id = $5,
                priority = $6, webhook_url = $7, webhook_events = $8, updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
        [
          flow.id,
          flow.name,
          flow.description,
          JSON.stringify(flow.trigger),
          flow.hookId,
          flow.priority,
          flow.webhookUrl,
          flow.webhookEvents,
        ],
      );
      if (!row) return null;
      const updated = this.flowRows.fromRow(row);
      await tx.rows(
        `INSERT INTO flow_versions (flow_id, version, steps, trigger, created_at) VALUES ($1, $2, $3::jsonb, $4::jsonb, now())`,
        [updated.id, updated.version, JSON.stringify(steps), JSON.stringify(updated.trigger)],
      );
      return updated;
    });
    this.forget(flow.id);
    return updated;
  }

  /** Soft delete: the flow's hook stops answering at once. */
  async deleteFlow(id: string): Promise<boolean> {
    const rows = await this.sql.rows(
      `UPDATE flows SET deleted_at = now(), hook_id = NULL, updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL RETURNING id`,
      [id],
    );
    this.forget(id);
    return rows.length > 0;
  }

  // --- runs ---

  /**
   * The run and its first step in one transaction; with a dedupe key already used by the flow, nothing is written
   * and the first run's id comes back with `created: false`.
   */
  async insertRun(run: FlowRunEntity, first: FlowStepEntity): Promise<{ runId: string; created: boolean }> {
    // One statement (a hook's every call makes one): the step goes in only with the run it belongs to.
    const [row] = await this.sql.rows<{ inserted: string | null; existing: string | null }>(
      `WITH run AS (${this.runRows.insertSql(1)} ON CONFLICT (flow_id, dedupe_key) DO NOTHING RETURNING id),
            step AS (${this.stepRows.insertSql(2)} WHERE EXISTS (SELECT 1 FROM run))
       SELECT (SELECT id FROM run) AS inserted,
              (SELECT id FROM flow_runs WHERE flow_id = $3 AND dedupe_key = $4) AS existing`,
      [this.runRows.records([run]), this.stepRows.records([first]), run.flowId, run.dedupeKey],
    );
    if (row.inserted) return { runId: row.inserted, created: true };
    if (row.existing) return { runId: row.existing, created: false };
    // The run it clashed with was committed while this statement ran, after its snapshot: look again.
    const [existing] = await this.sql.rows<{ id: string }>(
      `SELECT id FROM flow_runs WHERE flow_id = $1 AND dedupe_key = $2`,
      [run.flowId, run.dedupeKey],
    );
    return { runId: existing.id, created: false };
  }

  /** The time of the flow's last scheduled run before `beforeMs` (its dedupe key `tick:<ms>`), or null. */
  async lastTickBefore(flowId: string, beforeMs: number): Promise<number | null> {
    // Tick keys hold 13-digit times (until the year 2286), so their text order is their time order (the index's).
    const [row] = await this.sql.rows<{ dedupe_key: string }>(
      `SELECT dedupe_key FROM flow_runs WHERE flow_id = $1 AND dedupe_key >= 'tick:' AND dedupe_key < $2
        ORDER BY dedupe_key DESC LIMIT 1`,
      [flowId, `tick:${beforeMs}`],
    );
    const ms = row ? Number(row.dedupe_key.slice('tick:'.length)) : NaN;
    return Number.isFinite(ms) ? ms : null;
  }

  findRun(id: string, userId?: string): Promise<FlowRunEntity | null> {
    return this.runRepo.findOneBy(userId === undefined ? { id } : { id, userId });
  }

  async listRuns(q: {
    userId?: string;
    flowId?: string;
    status?: FlowRunStatus;
    limit: number;
    after?: { createdAt: Date; id: string };
  }): Promise<Page<FlowRunEntity>> {
    const qb = this.runRepo.createQueryBuilder('r').where('1 = 1');
    if (q.userId !== undefined) qb.andWhere('r.user_id = :userId', { userId: q.userId });
    if (q.flowId) qb.andWhere('r.flow_id = :flowId', { flowId: q.flowId });
    if (q.status) qb.andWhere('r.status = :status', { status: q.status });
    if (q.after) qb.andWhere('(r.created_at, r.id) < (:at, :id)', { at: q.after.createdAt, id: q.after.id });
    const rows = await qb
      .orderBy('r.created_at', 'DESC')
      .addOrderBy('r.id', 'DESC')
      .take(q.limit + 1)
      .getMany();
    return { rows: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
  }

  stepsOf(runId: string): Promise<FlowStepEntity[]> {
    return this.stepRepo.find({ where: { runId }, order: { startedAt: { direction: 'ASC', nulls: 'LAST' } } });
  }

  findStep(runId: string, stepId: string): Promise<FlowStepEntity | null> {
    return this.stepRepo.findOneBy({ runId, stepId });
  }

  /**
   * A try of a step begins: the run is running (started_at set the first time), the step running, its attempts
   * counted unless it only resumes a wait. Null when the run is over or in another round.
   */
  async beginStep(
    runId: string,
    stepId: string,
    round: number,
    newAttempt: boolean,
  ): Promise<{ run: FlowRunEntity; step: FlowStepEntity; firstStart: boolean } | null> {
    return this.sql.transaction(async (tx) => {
      const [before] = await tx.rows<{ started_at: Date | null }>(
        `SELECT started_at FROM flow_runs WHERE id = $1 AND round = $2 AND status IN ${LIVE_RUN} FOR UPDATE`,
        [runId, round],
      );
      if (!before) return null;
      const [run] = await tx.rows(
        `UPDATE flow_runs SET status = 'running', started_at = coalesce(started_at, now()), current_step = $2,
                updated_at = now()
          WHERE id = $1 RETURNING *`,
        [runId, stepId],
      );
      const [step] = await tx.rows(
        `UPDATE flow_steps SET status = 'running', attempts = attempts + $3, started_at = coalesce(started_at, now()),
                wake_at = NULL
          WHERE run_id = $1 AND step_id = $2 RETURNING *`,
        [runId, stepId, newAttempt ? 1 : 0],
      );
      if (!step) return null;
      return {
        run: this.runRows.fromRow(run),
        step: this.stepRows.fromRow(step),
        firstStart: before.started_at === null,
      };
    });
  }

  /**
   * A step ended for good (completed, or failed and the run goes on): the step, the next step's row and the run's
   * current step in one transaction, or the run's end when `next` is null (`runStatus`). False when the run was no
   * longer live in this round (cancelled meanwhile): nothing is written.
   */
  async finishStep(
    tx: Sql | null,
    args: {
      runId: string;
      round: number;
      stepId: string;
      end: StepEnd;
      next: { stepId: string; kind: string } | null;
      runEnd?: { status: 'completed' | 'failed'; error: FlowError | null };
    },
  ): Promise<boolean> {
    const work = async (t: Sql) => {
      const [locked] = await t.rows(
        `SELECT id FROM flow_runs WHERE id = $1 AND round = $2 AND status IN ${LIVE_RUN} FOR UPDATE`,
        [args.runId, args.round],
      );
      if (!locked) return false;
      const { end } = args;
      await t.rows(
        `UPDATE flow_steps SET status = $3, output = $4::jsonb, response = $5::jsonb, error = $6::jsonb,
                finished_at = now(), wake_at = NULL
          WHERE run_id = $1 AND step_id = $2`,
        [
          args.runId,
          args.stepId,
          end.status,
          end.status === 'completed' ? json(end.output) : null,
          end.status === 'completed' ? json(end.response) : null,
          end.status === 'failed' ? json(end.error) : null,
        ],
      );
      if (args.next) {
        await t.rows(
          `INSERT INTO flow_steps (run_id, step_id, kind, status, attempts) VALUES ($1, $2, $3, 'pending', 0)
           ON CONFLICT (run_id, step_id) DO UPDATE SET kind = EXCLUDED.kind, status = 'pending', attempts = 0,
             output = NULL, response = NULL, error = NULL, state = NULL, task_id = NULL, wake_at = NULL,
             started_at = NULL, finished_at = NULL`,
          [args.runId, args.next.stepId, args.next.kind],
        );
        await t.rows(`UPDATE flow_runs SET current_step = $2, status = 'running', updated_at = now() WHERE id = $1`, [
          args.runId,
          args.next.stepId,
        ]);
      } else {
        const runEnd = args.runEnd ?? { status: 'completed', error: null };
        await t.rows(
          `UPDATE flow_runs SET status = $2, error = $3::jsonb, finished_at = now(), updated_at = now() WHERE id = $1`,
          [args.runId, runEnd.status, json(runEnd.error)],
        );
      }
      return true;
    };
    return tx ? work(tx) : this.sql.transaction(work);
  }

  /** The step waits (on a task, a delay, a retry's backoff); the run waits with it. False when the run is over. */
  async waitStep(args: {
    runId: string;
    round: number;
    stepId: string;
    status: 'waiting' | 'pending';
    state: Record<string, unknown> | null;
    taskId: string | null;
    wakeAt: Date;
    error: FlowError | null;
  }): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      const [run] = await tx.rows(
        `UPDATE flow_runs SET status = 'waiting', updated_at = now()
          WHERE id = $1 AND round = $2 AND status IN ${LIVE_RUN} RETURNING id`,
        [args.runId, args.round],
      );
      if (!run) return false;
      await tx.rows(
        `UPDATE flow_steps SET status = $3, state = coalesce($4::jsonb, state), task_id = coalesce($5, task_id),
                wake_at = $6, error = $7::jsonb
          WHERE run_id = $1 AND step_id = $2`,
        [args.runId, args.stepId, args.status, json(args.state), args.taskId, args.wakeAt, json(args.error)],
      );
      return true;
    });
  }

  /** Cancels a live run and its unfinished steps; the run as it was before, or null when it was not live. */
  async cancelRun(id: string): Promise<{ run: FlowRunEntity; steps: FlowStepEntity[] } | null> {
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.rows(
        `UPDATE flow_runs SET status = 'cancelled', finished_at = now(), updated_at = now()
          WHERE id = $1 AND status IN ${LIVE_RUN} RETURNING *`,
        [id],
      );
      if (!row) return null;
      const steps = await tx.rows(
        `UPDATE flow_steps SET status = 'cancelled', finished_at = now(), wake_at = NULL
          WHERE run_id = $1 AND status IN ('pending', 'running', 'waiting') RETURNING *`,
        [id],
      );
      return { run: this.runRows.fromRow(row), steps: steps.map((s) => this.stepRows.fromRow(s)) };
    });
  }

  /** A failed run goes again from its failed step, in the next round; null when it is not failed. */
  async retryRun(id: string): Promise<FlowRunEntity | null> {
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.rows(
        `UPDATE flow_runs SET status = 'queued', round = round + 1, error = NULL, finished_at = NULL, updated_at = now()
          WHERE id = $1 AND status = 'failed' AND current_step IS NOT NULL RETURNING *`,
        [id],
      );
      if (!row) return null;
      const run = this.runRows.fromRow(row);
      await tx.rows(
        `UPDATE flow_steps SET status = 'pending', attempts = 0, error = NULL, state = NULL, task_id = NULL,
                wake_at = NULL, finished_at = NULL
          WHERE run_id = $1 AND step_id = $2`,
        [id, run.currentStep],
      );
      return run;
    });
  }

  /** Live runs untouched for `graceMs`: their step job may be lost (the reconciler looks). */
  async findStaleRuns(graceMs: number, limit: number): Promise<FlowRunEntity[]> {
    const rows = await this.sql.rows(
      `SELECT * FROM flow_runs WHERE status IN ${LIVE_RUN} AND updated_at < now() - ($1::int * interval '1 millisecond')
        ORDER BY updated_at LIMIT $2`,
      [graceMs, limit],
    );
    return rows.map((r) => this.runRows.fromRow(r));
  }

  async touchRun(id: string): Promise<void> {
    await this.sql.rows(`UPDATE flow_runs SET updated_at = now() WHERE id = $1`, [id]);
  }
}

function json(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
