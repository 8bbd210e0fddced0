import { Injectable } from '@nestjs/common';
import { SqlClient } from '../../database/sql-client';
import type { FlowTrigger } from '../flow-ports';

const UNDEFINED_TABLE = '42P01';

/**
 * The flows that should have a job scheduler, read from the definitions' table (`flows`: its id, its `trigger` as
 * JSON, `deleted_at`), for the pass that re-asserts the schedulers. Until that table exists there are none.
 */
@Injectable()
export class ScheduledFlowsRepository {
  constructor(private readonly sql: SqlClient) {}

  /** Null until the table exists. */
  async findScheduled(limit: number): Promise<{ id: string; trigger: FlowTrigger }[] | null> {
    return this.orNull(() =>
      this.sql.rows<{ id: string; trigger: FlowTrigger }>(
        `SELECT id::text AS id, trigger FROM flows
          WHERE deleted_at IS NULL AND trigger->>'type' = 'schedule'
          ORDER BY id LIMIT $1`,
        [limit],
      ),
    );
  }

  /** Which of `ids` are flows that have a schedule now (read after their schedulers were listed). */
  async scheduledAmong(ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await this.orNull(() =>
      this.sql.rows<{ id: string }>(
        `SELECT id::text AS id FROM flows
          WHERE id::text = ANY($1::text[]) AND deleted_at IS NULL AND trigger->>'type' = 'schedule'`,
        [ids],
      ),
    );
    // Without the table nothing is known: keep them all.
    return new Set(rows ? rows.map((r) => r.id) : ids);
  }

  private async orNull<T>(query: () => Promise<T>): Promise<T | null> {
    try {
      return await query();
    } catch (err) {
      if ((err as { code?: string }).code === UNDEFINED_TABLE) return null;
      throw err;
    }
  }
}
