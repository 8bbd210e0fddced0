import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { EntityRows } from '../database/entity-rows';
import { Sql, SqlClient } from '../database/sql-client';
import type { BatchCountsDto } from './dto/batch-response.dto';
import { BatchEntity } from './entities/batch.entity';

/** A batch as its owner reads it: every column but the write-only secret. */
export type BatchRow = BatchEntity;

export const BATCH_COMPLETED_EVENT = 'batch.completed';

/** Tasks by status, as a batch reports them (pending counts as queued: not started yet). */
const COUNTS_SQL = `jsonb_build_object(
    'queued', count(*) FILTER (WHERE status IN ('pending', 'queued')),
    'processing', count(*) FILTER (WHERE status = 'processing'),
    'completed', count(*) FILTER (WHERE status = 'completed'),
    'failed', count(*) FILTER (WHERE status = 'failed'),
    'cancelled', count(*) FILTER (WHERE status = 'cancelled'))`;

/** Batch rows (their tasks are rows of `tasks` with this `batch_id`). */
@Injectable()
export class BatchesRepository {
  private readonly repo: Repository<BatchEntity>;
  private readonly rows: EntityRows<BatchEntity>;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly sql: SqlClient,
  ) {
    this.repo = dataSource.getRepository(BatchEntity);
    this.rows = sql.table(BatchEntity);
  }

  /** Written on the transaction that inserts the batch's tasks. */
  async insertOn(tx: Sql, batch: BatchEntity): Promise<void> {
    await tx.rows(this.rows.insertSql(), [this.rows.records([batch])]);
  }

  /** The batch when `userId` owns it (undefined: admin); null otherwise, so callers answer 404. */
  findOwned(id: string, userId?: string): Promise<BatchRow | null> {
    return this.repo.findOneBy(userId === undefined ? { id } : { id, userId });
  }

  /**
   * A page of batches, newest first (`userId` undefined: every user's), each with its tasks counted by status; the
   * page is read through batches_user_created_idx (or batches_created_idx), its counts through tasks_batch_idx.
   */
  async list(query: {
    userId?: string;
    after?: { createdAt: Date; id: string };
    limit: number;
  }): Promise<{ rows: { batch: BatchRow; counts: BatchCountsDto }[]; hasMore: boolean }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.userId !== undefined) {
      params.push(query.userId);
      where.push(`b.user_id = $${params.length}`);
    }
    if (query.after) {
      params.push(query.after.createdAt, query.after.id);
      where.push(`(b.created_at, b.id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(query.limit + 1);
    const rows = await this.sql.rows<Record<string, unknown> & { counts: BatchCountsDto }>(
      `SELECT b.*, c.counts FROM batches b
         CROSS JOIN LATERAL (SELECT ${COUNTS_SQL} AS counts FROM tasks WHERE batch_id = b.id) c
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY b.created_at DESC, b.id DESC
        LIMIT $${params.length}`,
      params,
    );
    return {
      rows: rows.slice(0, query.limit).map((row) => ({ batch: this.rows.fromRow(row), counts: row.counts })),
      hasMore: rows.length > query.limit,
    };
  }

  /**
   * Open batches whose tasks have all finished: a process that died between a task's last transition and the
   * completion check left them open. The reconciler closes them with `closeIfFinished`.
   */
  async findFinishedOpen(limit: number): Promise<string[]> {
    const rows = await this.sql.rows<{ id: string }>(
      `SELECT b.id FROM batches b
        WHERE b.completed_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.batch_id = b.id
                            AND t.status IN ('pending', 'queued', 'processing'))
        ORDER BY b.created_at LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Marks the batch completed if none of its tasks is unfinished and it was not already: one conditional UPDATE, so
   * of several last tasks finishing at once exactly one gets the row (each runs this after its own commit, so the
   * last commit sees every task finished). The same statement writes the batch.completed delivery when the batch
   * has a URL (the outbox, as for task events); its body is built here, from the counts the statement reads. Null
   * when the batch is not (newly) complete.
   */
  async closeIfFinished(batchId: string): Promise<{ deliveryId: string | null } | null> {
    const rows = await this.sql.rows<{ id: string; delivery_id: string | null }>(
      `WITH b AS (
         UPDATE batches SET completed_at = now()
          WHERE id = $1 AND completed_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM tasks
                             WHERE batch_id = $1 AND status NOT IN ('completed', 'failed', 'cancelled'))
         RETURNING *),
       c AS (SELECT ${COUNTS_SQL} AS counts FROM tasks WHERE batch_id = $1),
       d AS (
         INSERT INTO webhook_deliveries (id, task_id, batch_id, user_id, event_type, sequence, url, body,
                                         next_attempt_at, created_at, updated_at)
         SELECT gen_random_uuid(), NULL, b.id, b.user_id, $2::text, 1, b.webhook_url,
                jsonb_build_object(
                  'event_type', $2::text,
                  'batch_id', b.id,
                  'timestamp', to_char(b.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  'data', jsonb_build_object('total', b.total, 'counts', c.counts),
                  'user_id', b.user_id,
                  'metadata', b.metadata)::text,
                b.completed_at, b.completed_at, b.completed_at
           FROM b, c
          WHERE b.webhook_url IS NOT NULL
         RETURNING id)
       SELECT b.id, (SELECT id FROM d) AS delivery_id FROM b`,
      [batchId, BATCH_COMPLETED_EVENT],
    );
    return rows.length ? { deliveryId: rows[0].delivery_id ?? null } : null;
  }
}
