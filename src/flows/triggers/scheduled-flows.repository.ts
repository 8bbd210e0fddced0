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

  async findScheduled(limit: number): Promise<{ id: string; trigger: FlowTrigger }[]> {
    try {
      return await this.sql.rows<{ id: string; trigger: FlowTrigger }>(
        `SELECT id::text AS id, trigger FROM flows
          WHERE deleted_at IS NULL AND trigger->>'type' = 'schedule'
          ORDER BY id LIMIT $1`,
        [limit],
      );
    } catch (err) {
      if ((err as { code?: string }).code === UNDEFINED_TABLE) return [];
      throw err;
    }
  }
}
