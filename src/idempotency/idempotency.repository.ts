import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** How long a key holds its first answer. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

export type Claim =
  | { kind: 'claimed' }
  | { kind: 'in_flight'; requestHash: string }
  | { kind: 'done'; requestHash: string; statusCode: number; response: unknown };

interface KeyRow {
  request_hash: string;
  state: string;
  status_code: number | null;
  response: unknown;
}

/** Idempotency keys in Postgres (the record survives a Redis flush like everything else a client relies on). */
@Injectable()
export class IdempotencyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Claims (user, key) for a request, or tells who has it. A key past its 24 hours is taken over as if new. One
   * statement, so concurrent requests with one key see exactly one `claimed`.
   */
  async claim(userId: string, key: string, requestHash: string): Promise<Claim> {
    for (let tries = 0; tries < 3; tries++) {
      const rows = await this.dataSource.query<KeyRow[]>(
        `INSERT INTO idempotency_keys (user_id, key, request_hash, state, created_at)
         VALUES ($1, $2, $3, 'in_flight', now())
         ON CONFLICT (user_id, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, state = 'in_flight', status_code = NULL, response = NULL,
               created_at = now()
           WHERE idempotency_keys.created_at < now() - make_interval(secs => $4 / 1000.0)
         RETURNING request_hash`,
        [userId, key, requestHash, IDEMPOTENCY_TTL_MS],
      );
      if (rows.length) return { kind: 'claimed' };
      // Someone holds the key. Read it in a statement of its own: the INSERT's snapshot may predate that holder's
      // commit (it waited for it), so it cannot see the row it conflicted with.
      const [row] = await this.dataSource.query<KeyRow[]>(
        `SELECT request_hash, state, status_code, response FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
        [userId, key],
      );
      if (!row) continue; // released in between: try to claim it again
      if (row.state === 'in_flight') return { kind: 'in_flight', requestHash: row.request_hash };
      return {
        kind: 'done',
        requestHash: row.request_hash,
        statusCode: row.status_code ?? 200,
        response: row.response,
      };
    }
    return { kind: 'in_flight', requestHash };
  }

  async complete(userId: string, key: string, statusCode: number, response: unknown): Promise<void> {
    await this.dataSource.query(
      `UPDATE idempotency_keys SET state = 'done', status_code = $3, response = $4::jsonb
        WHERE user_id = $1 AND key = $2 AND state = 'in_flight'`,
      [userId, key, statusCode, JSON.stringify(response ?? null)],
    );
  }

  /** The request failed: the key is free again, so the client can retry it (with the same key). */
  async release(userId: string, key: string): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_flight'`,
      [userId, key],
    );
  }

  /** Deletes keys past their 24 hours (at most `limit`); answers how many. */
  async sweep(limit: number): Promise<number> {
    const rows = await this.dataSource.query<{ n: number }[]>(
      `WITH gone AS (
         DELETE FROM idempotency_keys WHERE ctid IN (
           SELECT ctid FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1 / 1000.0)
            ORDER BY created_at LIMIT $2)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [IDEMPOTENCY_TTL_MS, limit],
    );
    return rows[0]?.n ?? 0;
  }
}
