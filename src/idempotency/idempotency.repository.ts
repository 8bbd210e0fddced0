import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, Repository } from 'typeorm';
import { SqlClient } from '../database/sql-client';
import { IdempotencyKeyEntity } from './entities/idempotency-key.entity';

/** How long a key holds its first answer. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

export type Claim =
  | { kind: 'claimed'; token: string }
  | { kind: 'in_flight'; requestHash: string }
  | { kind: 'done'; requestHash: string; statusCode: number; response: unknown };

/** Idempotency keys in Postgres (the record survives a Redis flush like everything else a client relies on). */
@Injectable()
export class IdempotencyRepository {
  private readonly repo: Repository<IdempotencyKeyEntity>;

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly sql: SqlClient,
  ) {
    this.repo = dataSource.getRepository(IdempotencyKeyEntity);
  }

  /**
   * Claims (user, key) for a request under a lease of `leaseMs`, or tells who has it. A key past its 24 hours, or
   * in flight with its lease lapsed (its request died), is taken over as if new. One statement, so concurrent
   * requests with one key see exactly one `claimed`; the claim's token is what its later writes must show.
   */
  async claim(userId: string, key: string, requestHash: string, leaseMs: number): Promise<Claim> {
    const token = randomUUID();
    for (let tries = 0; tries < 3; tries++) {
      const rows = await this.sql.rows(
        `INSERT INTO idempotency_keys (user_id, key, request_hash, state, created_at, lease_token, lease_expires_at)
         VALUES ($1, $2, $3, 'in_flight', now(), $4, now() + make_interval(secs => $5 / 1000.0))
         ON CONFLICT (user_id, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, state = 'in_flight', status_code = NULL, response = NULL,
               created_at = now(), lease_token = EXCLUDED.lease_token, lease_expires_at = EXCLUDED.lease_expires_at
           WHERE idempotency_keys.created_at < now() - make_interval(secs => $6 / 1000.0)
              OR (idempotency_keys.state = 'in_flight'
                  AND coalesce(idempotency_keys.lease_expires_at, idempotency_keys.created_at + interval '1 hour')
                      < now())
         RETURNING request_hash`,
        [userId, key, requestHash, token, leaseMs, IDEMPOTENCY_TTL_MS],
      );
      if (rows.length) return { kind: 'claimed', token };
      // Someone holds the key. Read it in a statement of its own: the INSERT's snapshot may predate that holder's
      // commit (it waited for it), so it cannot see the row it conflicted with.
      const row = await this.repo.findOne({
        select: { requestHash: true, state: true, statusCode: true, response: true },
        where: { userId, key },
      });
      if (!row) continue; // released in between: try to claim it again
      if (row.state === 'in_flight') return { kind: 'in_flight', requestHash: row.requestHash };
      return { kind: 'done', requestHash: row.requestHash, statusCode: row.statusCode ?? 200, response: row.response };
    }
    return { kind: 'in_flight', requestHash };
  }

  /** The claim's request is alive: its lease runs `leaseMs` from now. False when the claim is no longer its. */
  async renew(userId: string, key: string, token: string, leaseMs: number): Promise<boolean> {
    const { affected } = await this.repo
      .createQueryBuilder()
      .update()
      .set({ leaseExpiresAt: () => 'now() + make_interval(secs => :leaseMs / 1000.0)' })
      .where({ userId, key, state: 'in_flight', leaseToken: token })
      .setParameters({ leaseMs })
      .execute();
    return (affected ?? 0) > 0;
  }

  async complete(userId: string, key: string, token: string, statusCode: number, response: unknown): Promise<void> {
    await this.repo.update(
      { userId, key, state: 'in_flight', leaseToken: token },
      { state: 'done', statusCode, response: response as object, leaseExpiresAt: null },
    );
  }

  /** The request failed: the key is free again, so the client can retry it (with the same key). */
  async release(userId: string, key: string, token: string): Promise<void> {
    await this.repo.delete({ userId, key, state: 'in_flight', leaseToken: token });
  }

  /** Deletes keys past their 24 hours (at most `limit`); answers how many. */
  async sweep(limit: number): Promise<number> {
    const rows = await this.sql.rows<{ n: number }>(
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
