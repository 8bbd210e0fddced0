import { Logger, Injectable } from '@nestjs/common';
import { PostgresNotifications } from '../database/postgres-notifications';
import { SqlClient } from '../database/sql-client';
import { SharedCacheState } from './shared-cache-state';

/** Per database, so deployments sharing a Postgres server never hear each other's purges. */
const PURGE_CHANNEL = 'media_tasks_cache_purge';
const SWEEP_INTERVAL_MS = 60_000;

// Takes the claim when nobody holds it or its holder's claim lapsed; a task asking again keeps its claim as it was.
// Otherwise the task is listed as waiting, and the list lives on for `ttl` from now (as a Redis key's expiry).
const CLAIM = `
  WITH claim AS (
    INSERT INTO cache_first_calls AS c (key, task_id, expires_at) VALUES ($1, $2, $3::bigint + $4::bigint)
    ON CONFLICT (key) DO UPDATE SET task_id = EXCLUDED.task_id, expires_at = EXCLUDED.expires_at
      WHERE c.expires_at <= $3::bigint
    RETURNING task_id
  ),
  held AS (SELECT 1 FROM cache_first_calls WHERE key = $1 AND task_id = $2 AND expires_at > $3::bigint),
  first AS (SELECT EXISTS (SELECT 1 FROM claim) OR EXISTS (SELECT 1 FROM held) AS first),
  listed AS (
    INSERT INTO cache_first_call_waiters AS w (key, task_id, expires_at)
    SELECT $1, $2, $3::bigint + $4::bigint FROM first WHERE NOT first.first
    ON CONFLICT (key, task_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
  ),
  renewed AS (
    UPDATE cache_first_call_waiters SET expires_at = $3::bigint + $4::bigint
    WHERE key = $1 AND task_id <> $2 AND expires_at > $3::bigint AND NOT (SELECT first FROM first)
  )
  SELECT first FROM first`;

// Only the holder of a live claim gives it up; the waiters still listed are answered and the list dropped.
const RELEASE = `
  WITH released AS (
    DELETE FROM cache_first_calls WHERE key = $1 AND task_id = $2 AND expires_at > $3 RETURNING key
  )
  DELETE FROM cache_first_call_waiters w USING released WHERE w.key = released.key
  RETURNING w.task_id, w.expires_at > $3 AS live`;

/**
 * The cache's shared state in the platform's Postgres (QUEUE_BACKEND=postgres). There is no shared entry layer: a
 * result is found in this process's memory or on this host's disk (the disk folder can be shared by the hosts), and
 * the 'redis' layer of the statistics stays empty. Claims and counters are rows; purges go out by NOTIFY and are
 * heard on the process's one LISTEN connection.
 */
@Injectable()
export class PostgresCacheState extends SharedCacheState {
  private readonly logger = new Logger('ResultCache');
  readonly hasSharedLayer = false;
  private stopHearing?: () => void;
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly sql: SqlClient,
    private readonly notifications: PostgresNotifications,
  ) {
    super();
  }

  getEntry(): Promise<string | null> {
    return Promise.resolve(null);
  }

  setEntry(): Promise<void> {
    return Promise.resolve();
  }

  entryCount(): Promise<number> {
    return Promise.resolve(0);
  }

  async claimFirstCall(key: string, taskId: string, ttlMs: number): Promise<boolean> {
    const [{ first }] = await this.sql.rows<{ first: boolean }>(CLAIM, [key, taskId, Date.now(), ttlMs]);
    return first;
  }

  async releaseFirstCall(key: string, taskId: string): Promise<string[]> {
    const rows = await this.sql
      .rows<{ task_id: string; live: boolean }>(RELEASE, [key, taskId, Date.now()])
      .catch(() => []);
    return rows.filter((row) => row.live).map((row) => row.task_id);
  }

  async addCounts(counts: [string, number][]): Promise<void> {
    await this.sql.rows(
      `INSERT INTO cache_counters AS c (name, count) SELECT * FROM unnest($1::text[], $2::bigint[])
       ON CONFLICT (name) DO UPDATE SET count = c.count + EXCLUDED.count`,
      [counts.map(([name]) => name), counts.map(([, by]) => by)],
    );
  }

  async readCounts(): Promise<Record<string, number>> {
    const rows = await this.sql.rows<{ name: string; count: number }>(
      `SELECT name, count::float8 AS count FROM cache_counters`,
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.count]));
  }

  async purge(): Promise<void> {
    await this.sql.rows(`DELETE FROM cache_counters`);
    await this.notifications.notify(PURGE_CHANNEL, 'purge');
  }

  open(onPurge: () => void): void {
    this.stopHearing = this.notifications.onNotification((channel) => {
      if (channel === PURGE_CHANNEL) onPurge();
    });
    this.notifications
      .listen(PURGE_CHANNEL)
      .catch((err: Error) => this.logger.warn(`purges of other processes not heard yet: ${err.message}`));
    // Claims and waiters of tasks that died are taken over when their key is asked again; those never asked again
    // are deleted here.
    this.sweepTimer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.stopHearing?.();
    this.notifications.unlisten(PURGE_CHANNEL);
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    try {
      await this.sql.rows(`DELETE FROM cache_first_calls WHERE expires_at <= $1`, [now]);
      await this.sql.rows(`DELETE FROM cache_first_call_waiters WHERE expires_at <= $1`, [now]);
    } catch (err) {
      this.logger.warn(`lapsed single-flight claims not swept: ${(err as Error).message}`);
    }
  }
}
