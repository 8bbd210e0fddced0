import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { Sql, SqlClient } from '../database/sql-client';
import {
  Admission,
  CircuitState,
  EWMA_ALPHA,
  LINE_TTL_MS,
  ProviderHealth,
  ProviderHealthService,
} from './provider-health.service';

interface LockedProvider {
  circuit: CircuitState;
  opened_at: number | null;
  trial_until: number | null;
  line_expires_at: number | null;
}

// Creates the provider's row when it has none and locks it until the transaction ends: every admission and every
// change to the line of one provider runs one at a time, across processes, as a Lua script does in Redis.
const LOCK_PROVIDER = `
  INSERT INTO provider_health AS h (provider) VALUES ($1)
  ON CONFLICT (provider) DO UPDATE SET provider = h.provider
  RETURNING circuit, opened_at::float8, trial_until::float8, line_expires_at::float8`;

// A line nobody asked in before it lapsed is dropped whole, as the Redis key expires.
const DROP_LAPSED_LINE = `DELETE FROM provider_line WHERE provider = $1`;

// Leases past their expiry free their slot; the remaining count, whether this task holds one, and the line's length.
const SLOTS = `
  WITH lapsed AS (DELETE FROM provider_leases WHERE provider = $1 AND expires_at <= $2)
  SELECT (SELECT count(*) FROM provider_leases WHERE provider = $1 AND expires_at > $2)::int AS taken,
         EXISTS (SELECT 1 FROM provider_leases WHERE provider = $1 AND task_id = $3 AND expires_at > $2) AS held,
         (SELECT count(*) FROM provider_line WHERE provider = $1)::int AS waiting`;

// Waiters not seen for `stale` ms (cancelled, or their worker gone) leave the line.
const DROP_STALE_WAITERS = `DELETE FROM provider_line WHERE provider = $1 AND seen_at <= $2::bigint - $3::bigint`;

// The task takes its place in the line (a place already held keeps its ticket); answers how many stand before it.
const STAND_IN_LINE = `
  WITH placed AS (
    INSERT INTO provider_line AS l (provider, task_id, ticket, seen_at) VALUES ($1, $3, $4, $2)
    ON CONFLICT (provider, task_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
    RETURNING l.ticket
  )
  SELECT count(*)::int AS ahead FROM provider_line w, placed
  WHERE w.provider = $1 AND w.task_id <> $3
    AND (w.ticket < placed.ticket OR (w.ticket = placed.ticket AND w.task_id < $3))`;

const RECORD = `
  UPDATE provider_health SET
    success = coalesce(success, 1) + $3 * ($2 - coalesce(success, 1)),
    latency = CASE WHEN $2 = 0 THEN latency WHEN latency IS NULL THEN $4 ELSE latency + $3 * ($4 - latency) END,
    calls = calls + 1,
    failures = failures + 1 - $2,
    consecutive_failures = CASE WHEN $2 = 1 THEN 0 ELSE consecutive_failures + 1 END,
    circuit = CASE
      WHEN $2 = 1 THEN 'closed'
      WHEN circuit = 'half_open' OR consecutive_failures + 1 >= $5 THEN 'open'
      ELSE circuit END,
    opened_at = CASE WHEN $2 = 0 AND (circuit = 'half_open' OR consecutive_failures + 1 >= $5) THEN $6 ELSE opened_at END
  WHERE provider = $1`;

// The first in line, unless the line has lapsed.
const FIRST_IN_LINE = `
  SELECT l.task_id FROM provider_line l
  WHERE l.provider = $1
    AND NOT EXISTS (SELECT 1 FROM provider_health h WHERE h.provider = $1 AND h.line_expires_at <= $2)
  ORDER BY l.ticket, l.task_id LIMIT 1`;

const SNAPSHOTS = `
  SELECT p.name, h.circuit, h.opened_at::float8, h.success, h.latency, h.calls::float8, h.failures::float8,
         (SELECT count(*) FROM provider_leases l WHERE l.provider = p.name AND l.expires_at >= $2)::int AS in_flight
  FROM unnest($1::text[]) WITH ORDINALITY AS p(name, position)
  LEFT JOIN provider_health h ON h.provider = p.name
  ORDER BY p.position`;

/**
 * Provider health and caps in the platform's Postgres (QUEUE_BACKEND=postgres): one row per provider, locked for
 * each admission so the check of the circuit, the slots and the line and the taking of a slot are one step for the
 * whole cluster; leases and the line are rows of their own. The same answers as RedisProviderHealth.
 */
@Injectable()
export class PostgresProviderHealth extends ProviderHealthService {
  constructor(
    private readonly sql: SqlClient,
    config: AppConfig,
  ) {
    super(config);
  }

  override async record(name: string, ok: boolean, latencyMs: number, release?: string): Promise<string | undefined> {
    const now = Date.now();
    if (release)
      await this.sql.rows(`DELETE FROM provider_leases WHERE provider = $1 AND task_id = $2`, [name, release]);
    await this.sql.rows(`INSERT INTO provider_health (provider) VALUES ($1) ON CONFLICT (provider) DO NOTHING`, [name]);
    await this.sql.rows(RECORD, [
      name,
      ok ? 1 : 0,
      EWMA_ALPHA,
      Math.round(latencyMs),
      this.config.circuit.threshold,
      now,
    ]);
    return release ? this.firstInLine(this.sql, name, now) : undefined;
  }

  override async admit(
    name: string,
    taskId: string,
    cap: number,
    ttlMs: number,
    line: { ticket: number; staleMs: number } = { ticket: Date.now(), staleMs: 10_000 },
  ): Promise<Admission> {
    const now = Date.now();
    const cooldown = this.config.circuit.cooldownMs;
    // A provider without a cap whose circuit is closed admits everyone: a lease and nothing to decide, so no lock on
    // its row (every task of a provider would otherwise pass one at a time). Anything else takes the locked path.
    if (cap >= Number.MAX_SAFE_INTEGER) {
      const rows = await this.sql.rows<{ circuit: string | null }>(
        `WITH health AS (SELECT circuit FROM provider_health WHERE provider = $1)
         INSERT INTO provider_leases (provider, task_id, expires_at)
         SELECT $1, $2, $3 WHERE coalesce((SELECT circuit FROM health), 'closed') = 'closed'
         ON CONFLICT (provider, task_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
         RETURNING 'closed' AS circuit`,
        [name, taskId, now + ttlMs],
      );
      if (rows.length) return 'admitted';
    }
    return this.sql.transaction(async (tx) => {
      const provider = await this.lock(tx, name, now);
      // The circuit first: while open, nobody; after the cool-down, exactly one caller gets the trial call.
      let trialTaken = false;
      if (provider.circuit === 'open' || provider.circuit === 'half_open') {
        if (now - (provider.opened_at ?? 0) < cooldown) return 'circuit_open';
        if (provider.trial_until !== null && provider.trial_until > now) return 'circuit_open';
        trialTaken = true;
      }
      const [slots] = await tx.rows<{ taken: number; held: boolean; waiting: number }>(SLOTS, [name, now, taskId]);
      if (!slots.held) {
        const free = cap - slots.taken;
        // When slots are short, or others already wait, the task stands in the line: a freed slot goes to the first
        // in line rather than to whichever task asks first.
        if (free <= 0 || slots.waiting > 0) {
          await tx.rows(DROP_STALE_WAITERS, [name, now, line.staleMs]);
          const [{ ahead }] = await tx.rows<{ ahead: number }>(STAND_IN_LINE, [name, now, taskId, line.ticket]);
          await tx.rows(`UPDATE provider_health SET line_expires_at = $2 WHERE provider = $1`, [
            name,
            now + line.staleMs * 2,
          ]);
          if (free <= 0 || ahead >= free) return 'capped';
          await tx.rows(`DELETE FROM provider_line WHERE provider = $1 AND task_id = $2`, [name, taskId]);
        }
      }
      await tx.rows(
        `INSERT INTO provider_leases (provider, task_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (provider, task_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
        [name, taskId, now + ttlMs],
      );
      if (trialTaken) {
        await tx.rows(`UPDATE provider_health SET circuit = 'half_open', trial_until = $2 WHERE provider = $1`, [
          name,
          now + cooldown,
        ]);
      }
      return 'admitted';
    });
  }

  override async join(name: string, taskIds: string[], ticket: number): Promise<void> {
    if (taskIds.length === 0) return;
    const now = Date.now();
    await this.sql.transaction(async (tx) => {
      await this.lock(tx, name, now);
      await tx.rows(
        `INSERT INTO provider_line (provider, task_id, ticket, seen_at) SELECT $1, id, $3, $4 FROM unnest($2::text[]) AS id
         ON CONFLICT (provider, task_id) DO UPDATE SET seen_at = EXCLUDED.seen_at`,
        [name, taskIds, ticket, now],
      );
      await tx.rows(`UPDATE provider_health SET line_expires_at = $2 WHERE provider = $1`, [name, now + LINE_TTL_MS]);
    });
  }

  override async release(name: string, taskId: string): Promise<string | undefined> {
    await this.sql.rows(
      `WITH freed AS (DELETE FROM provider_leases WHERE provider = $1 AND task_id = $2)
       DELETE FROM provider_line WHERE provider = $1 AND task_id = $2`,
      [name, taskId],
    );
    return this.firstInLine(this.sql, name, Date.now());
  }

  override async snapshots(names: string[]): Promise<ProviderHealth[]> {
    const rows = await this.sql.rows<{
      circuit: CircuitState | null;
      opened_at: number | null;
      success: number | null;
      latency: number | null;
      calls: number | null;
      failures: number | null;
      in_flight: number;
    }>(SNAPSHOTS, [names, Date.now()]);
    return rows.map((h) =>
      this.toHealth(
        {
          circuit: h.circuit,
          openedAt: h.opened_at,
          success: h.success,
          latency: h.latency,
          calls: h.calls ?? 0,
          failures: h.failures ?? 0,
        },
        h.in_flight,
      ),
    );
  }

  /** Locks the provider's row for the transaction, first dropping its line when nobody has asked in it for long. */
  private async lock(tx: Sql, name: string, now: number): Promise<LockedProvider> {
    const [provider] = await tx.rows<LockedProvider>(LOCK_PROVIDER, [name]);
    if (provider.line_expires_at !== null && provider.line_expires_at <= now) {
      await tx.rows(DROP_LAPSED_LINE, [name]);
      await tx.rows(`UPDATE provider_health SET line_expires_at = NULL WHERE provider = $1`, [name]);
    }
    return provider;
  }

  private async firstInLine(sql: Sql, name: string, now: number): Promise<string | undefined> {
    const [first] = await sql.rows<{ task_id: string }>(FIRST_IN_LINE, [name, now]);
    return first?.task_id;
  }
}
