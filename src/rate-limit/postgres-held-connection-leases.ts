import { Injectable } from '@nestjs/common';
import { SqlClient } from '../database/sql-client';
import { HELD_LEASE_MS, HeldConnectionLeases } from './held-connection-leases';

/** The first key of the advisory locks that make one user's takes run one at a time ("HELD"). */
const LOCK_CLASS = 0x48454c44;

/**
 * Drops the user's lapsed leases, counts the others and adds the new one when there is room. The statement sees the
 * table as it was when it began, so the lapsed rows it deletes are left out of the count by their expiry.
 */
const TAKE = `
WITH lapsed AS (DELETE FROM held_connections WHERE user_id = $1 AND expires_at <= now()),
held AS (SELECT count(*)::int AS n FROM held_connections WHERE user_id = $1 AND expires_at > now()),
taken AS (
  INSERT INTO held_connections (lease_id, user_id, expires_at)
  SELECT $2, $1, now() + $3 * interval '1 millisecond' FROM held WHERE n < $4
  RETURNING lease_id
)
SELECT (SELECT n FROM held) AS held, EXISTS (SELECT 1 FROM taken) AS taken`;

const RENEW = `
INSERT INTO held_connections (lease_id, user_id, expires_at)
SELECT lease_id, user_id, now() + $3 * interval '1 millisecond' FROM unnest($1::uuid[], $2::text[]) AS l(lease_id, user_id)
ON CONFLICT (lease_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`;

/**
 * A row per lease in `held_connections`. Postgres clocks the leases, so processes whose clocks differ agree; a user's
 * takes hold an advisory lock on that user for their transaction, so two processes cannot both take the last place.
 */
@Injectable()
export class PostgresHeldConnectionLeases extends HeldConnectionLeases {
  constructor(private readonly sql: SqlClient) {
    super();
  }

  take(userId: string, lease: string, limit: number): Promise<number> {
    return this.sql.transaction(async (tx) => {
      await tx.rows(`SELECT pg_advisory_xact_lock($1::int, hashtext($2))`, [LOCK_CLASS, userId]);
      const [row] = await tx.rows<{ held: number; taken: boolean }>(TAKE, [userId, lease, HELD_LEASE_MS, limit]);
      return row.taken ? -1 : row.held;
    });
  }

  async release(_userId: string, lease: string): Promise<void> {
    await this.sql.rows(`DELETE FROM held_connections WHERE lease_id = $1`, [lease]);
  }

  /** Also sweeps every lapsed lease, of users who have not come back to take another. */
  async renew(leases: ReadonlyMap<string, string>): Promise<void> {
    await this.sql.rows(RENEW, [[...leases.keys()], [...leases.values()], HELD_LEASE_MS]);
    await this.sql.rows(`DELETE FROM held_connections WHERE expires_at <= now()`);
  }
}
