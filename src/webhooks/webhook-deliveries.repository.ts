import { Injectable } from '@nestjs/common';
import { GroupCommit } from '../common/group-commit';
import { EntityRows } from '../database/entity-rows';
import { Sql, SqlClient } from '../database/sql-client';
import { DeliveryAttempt, DeliveryStatus, WebhookDeliveryEntity } from './entities/webhook-delivery.entity';

export type { DeliveryAttempt, DeliveryStatus } from './entities/webhook-delivery.entity';

/** A delivery as the sender and the API read it (the lease and the secret are the repository's business). */
export type DeliveryRow = Omit<WebhookDeliveryEntity, 'leaseUntil' | 'secret'>;

/**
 * What a `webhook.deliver` job finds: the first delivery of its task and URL still waiting for a first attempt,
 * claimed; or nothing to do here — and whether the job's own delivery is still waiting, unleased, behind one another
 * sender holds (that sender may have looked for its next delivery before this one existed, so the job must look
 * again later).
 */
export interface FirstClaim {
  claimed: ClaimedDelivery | null;
  ownWaiting: boolean;
  /** When nothing was claimed: the first delivery of the line, which another sender holds. */
  head: string | null;
}

/**
 * A delivery claimed for an attempt (leased: nobody else sends it meanwhile), with its task's own secret (for a
 * batch.completed delivery, which has no task: its batch's; for a flow run's delivery: the one its row keeps).
 */
export interface ClaimedDelivery {
  delivery: DeliveryRow;
  taskSecret: string | null;
}

export interface AttemptRecord {
  attempt: DeliveryAttempt;
  status: DeliveryStatus;
  nextAttemptAt: Date | null;
}

export interface DeliveryStatistics {
  pending: number;
  delivered: number;
  failed: number;
  dead: number;
  success_rate: number | null;
  latency_ms: { mean: number | null; p50: number | null; p95: number | null; p99: number | null };
  attempt_duration_ms: { mean: number | null };
}

const FIRST = `w.attempts = 0 AND w.status = 'pending'`;
const AGAIN = `w.attempts > 0 AND w.status IN ('pending', 'failed')`;

/**
 * The end of a claim: leases the row chosen by the `head` CTE (the delivery to attempt next, by primary key, whatever
 * the table's statistics say) unless another sender holds it or it has moved on (`state`, checked again after waiting
 * for a concurrent writer's lock), and answers the chosen row's id with, when claimed, the row and its task's (or
 * batch's) secret. `lease` is the parameter holding the lease in ms.
 */
function claimHead(state: string, lease: string, extra = ''): string {
  return `claimed AS (
         UPDATE webhook_deliveries w SET lease_until = now() + make_interval(secs => ${lease} / 1000.0)
          WHERE w.id = (SELECT id FROM head LIMIT 1) AND ${state} AND (w.lease_until IS NULL OR w.lease_until < now())
         RETURNING w.*)
       SELECT h.id AS head_id, d.*, COALESCE(t.webhook_secret, b.webhook_secret, d.secret) AS task_secret ${extra}
         FROM (SELECT 1) one LEFT JOIN head h ON true LEFT JOIN claimed d ON d.id = h.id
         LEFT JOIN tasks t ON t.id = d.task_id LEFT JOIN batches b ON b.id = d.batch_id`;
}

/**
 * The first delivery waiting for its first attempt in the line of `row` (the alias of an outer row with `task_id`,
 * `flow_run_id` and `url`): the deliveries of one task, or of one flow run, to one URL go out in sequence order. One
 * branch per kind of line, so that each is one ordered index scan.
 */
function lineHead(row: string, where = 'true'): string {
  const branch = (column: string) =>
    `(SELECT e.id FROM webhook_deliveries e
       WHERE ${where} AND e.${column} = ${row}.${column} AND e.url = ${row}.url
         AND e.attempts = 0 AND e.status = 'pending'
       ORDER BY e.sequence LIMIT 1)`;
  return `${branch('task_id')} UNION ALL ${branch('flow_run_id')}`;
}

/**
 * The claims of a batch, after a `pick` CTE of (`ord`, `head_id`): each head once (to the first of the batch's
 * deliveries that chose it), leased unless another sender holds it or it has moved on (checked again after waiting
 * for a concurrent writer's lock). `lease` is the parameter holding the lease in ms.
 *
 * The rows are found by their primary key alone: the state is checked inside a CASE, which no index matches. As
 * plain conditions, a table whose statistics predate a backlog of first attempts (say, one that built up while a
 * receiver was down) had Postgres choose the partial indexes of waiting rows instead, and read the whole backlog on
 * every claim (25 ms for 3 rows behind 8,000).
 */
function claimHeads(lease: string): string {
  return `head AS (SELECT DISTINCT ON (head_id) ord, head_id FROM pick WHERE head_id IS NOT NULL ORDER BY head_id, ord),
       claimed AS (
         UPDATE webhook_deliveries w SET lease_until = now() + make_interval(secs => ${lease} / 1000.0)
          WHERE w.id = ANY (ARRAY(SELECT head_id FROM head))
            AND CASE WHEN ${FIRST} AND (w.lease_until IS NULL OR w.lease_until < now()) THEN true ELSE false END
         RETURNING w.*)`;
}

/**
 * Text a receiver wrote (its response, an error quoting it) as Postgres can keep it: a NUL byte, which neither `text`
 * nor `jsonb` accepts, becomes U+FFFD (otherwise a receiver answering one would leave its attempts unrecorded).
 */
function textOf(value: string | null): string | null {
  return value === null ? null : value.replaceAll('\u0000', '\uFFFD');
}

/** Concurrent claims, and records, of one process that share a statement: up to this many statements at once. */
const STATEMENTS_IN_FLIGHT = 1;
/** The most claims, or records, one statement takes. */
const MAX_BATCH = 64;

/** What one claim of a batch found (see `claimFirstMany`). */
interface ClaimOnce {
  head: string | null;
  claimed: ClaimedDelivery | null;
  ownWaiting: boolean;
  heldInBatch: boolean;
}

interface RecordItem {
  id: string;
  record: AttemptRecord;
}

/** Webhook delivery rows (written with the task changes that make them: see TasksRepository). */
@Injectable()
export class WebhookDeliveriesRepository {
  private readonly rows: EntityRows<WebhookDeliveryEntity>;

  constructor(private readonly sql: SqlClient) {
    this.rows = sql.table(WebhookDeliveryEntity);
  }

  /**
   * Claims the next first attempt for `deliveryId`'s task and URL: the lowest-sequence delivery of the same task to
   * the same URL that has had no attempt yet (a delivery without a task stands alone). Null when that one is leased
   * by another sender (which sends the later ones after it) or when nothing is left. Concurrent claims share one
   * statement (see `claims`).
   */
  async claimNextFirst(deliveryId: string, leaseMs: number): Promise<FirstClaim> {
    // A first delivery that moved on while we waited for its lock (another sender attempted it) is looked for again,
    // with a fresh view of the rows; the same one twice means another sender holds it.
    let previous: unknown;
    for (;;) {
      const { head, claimed, ownWaiting, heldInBatch } = await this.claims.submit(String(leaseMs), deliveryId);
      if (claimed || !head || heldInBatch || head === previous) {
        return { claimed, ownWaiting: !claimed && ownWaiting, head: claimed ? null : head };
      }
      previous = head;
    }
  }

  /**
   * Group commit of the claims and of the attempts' records (DESIGN decision 8): the senders of a busy process
   * (WEBHOOK_CONCURRENCY lines at once) make one statement per batch instead of one each. On a loopback socket a
   * statement's write and the wake-up of its Postgres backend cost more than the statement itself, and these two
   * statements were all a delivery's database work. Up to STATEMENTS_IN_FLIGHT of each kind run at once, so a lone
   * delivery's statement still goes at once; the claims and records that arrive meanwhile wait for one to return.
   */
  private readonly claims = new GroupCommit<string, ClaimOnce>(
    (lease, ids) => this.claimFirstMany(ids, Number(lease)),
    { parallel: STATEMENTS_IN_FLIGHT, maxBatch: MAX_BATCH },
  );

  // One record's own failure must not fail the others: each alone again.
  private readonly records = new GroupCommit<RecordItem, ClaimedDelivery | null>(
    (lease, items) => this.recordMany(items, Number(lease)),
    { parallel: STATEMENTS_IN_FLIGHT, maxBatch: MAX_BATCH, isolateFailures: true },
  );

  /**
   * One statement for a batch of claims: for each delivery, the first delivery of its line still waiting for a first
   * attempt (its head), leased unless another sender holds it or it has moved on. Two deliveries of one line in the
   * batch have the same head: the first of them claims it, the other is answered as held by another sender.
   */
  private async claimFirstMany(ids: string[], leaseMs: number): Promise<ClaimOnce[]> {
    const rows = await this.sql.rows(
      `WITH req AS (SELECT r.id, r.ord::int AS ord FROM unnest($1::uuid[]) WITH ORDINALITY AS r(id, ord)),
       own AS (
         SELECT req.ord, d.id, d.task_id, d.flow_run_id, d.url, d.attempts = 0 AND d.status = 'pending' AS is_first,
                d.attempts = 0 AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
                  AS own_waiting
           FROM req JOIN webhook_deliveries d ON d.id = req.id),
       pick AS (
         SELECT own.ord, own.own_waiting,
                (SELECT x.id FROM (
                   ${lineHead('own')}
                   UNION ALL
                   SELECT own.id WHERE own.task_id IS NULL AND own.flow_run_id IS NULL AND own.is_first) x
                 LIMIT 1) AS head_id
           FROM own),
       ${claimHeads('$2')}
       SELECT p.ord, p.head_id, p.own_waiting, h.ord IS NULL AND p.head_id IS NOT NULL AS held_in_batch, d.*,
              COALESCE(t.webhook_secret, b.webhook_secret, d.secret) AS task_secret
         FROM pick p LEFT JOIN head h ON h.ord = p.ord LEFT JOIN claimed d ON d.id = h.head_id
         LEFT JOIN tasks t ON t.id = d.task_id LEFT JOIN batches b ON b.id = d.batch_id`,
      [ids, leaseMs],
    );
    const byOrd = new Map(rows.map((row) => [Number(row.ord), row]));
    return ids.map((_, i) => {
      const row = byOrd.get(i + 1);
      // No row: the delivery is gone (its task deleted).
      if (!row) return { head: null, claimed: null, ownWaiting: false, heldInBatch: false };
      return {
        head: (row.head_id as string | null) ?? null,
        claimed: this.claimedOf(row),
        ownWaiting: row.own_waiting === true,
        heldInBatch: row.held_in_batch === true,
      };
    });
  }

  /** Claims a delivery for a retry or a replay (it has been attempted before); null when it is not due for one. */
  async claimRetry(deliveryId: string, leaseMs: number): Promise<ClaimedDelivery | null> {
    const rows = await this.sql.rows(
      `WITH head AS (
         SELECT id FROM webhook_deliveries WHERE id = $1 AND attempts > 0 AND status IN ('pending', 'failed')),
       ${claimHead(AGAIN, '$2')}`,
      [deliveryId, leaseMs],
    );
    return this.claimResult(rows).claimed;
  }

  /**
   * Appends one attempt, moves the delivery on and frees its lease. After a first attempt, the same statement claims
   * the next first attempt of the same task and URL (so it goes out without a queue round trip). Concurrent records
   * share one statement (see `claims`).
   */
  async recordAttempt(id: string, record: AttemptRecord, leaseMs: number): Promise<ClaimedDelivery | null> {
    return this.records.submit(String(leaseMs), { id, record });
  }

  private async recordMany(items: RecordItem[], leaseMs: number): Promise<(ClaimedDelivery | null)[]> {
    // One UPDATE changes a row once: a delivery recorded twice in one group is written alone, twice.
    if (new Set(items.map((item) => item.id)).size < items.length) throw new Error('a delivery twice in one group');
    const values = items.map(({ id, record }, i) => {
      const attempt = {
        ...record.attempt,
        error: textOf(record.attempt.error),
        response_excerpt: textOf(record.attempt.response_excerpt),
      };
      return {
        ord: i + 1,
        id,
        attempt,
        status: record.status,
        next_attempt_at: record.nextAttemptAt,
        status_code: attempt.status_code,
        error: attempt.error,
      };
    });
    const rows = await this.sql.rows(
      `WITH v AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(
           ord int, id uuid, attempt jsonb, status text, next_attempt_at timestamptz, status_code int, error text)),
       u AS (
         UPDATE webhook_deliveries w
            SET attempts = w.attempts + 1, round_attempts = w.round_attempts + 1,
                attempt_log = w.attempt_log || jsonb_build_array(v.attempt),
                status = v.status, next_attempt_at = v.next_attempt_at, last_status_code = v.status_code,
                last_error = v.error, updated_at = now(),
                delivered_at = CASE WHEN v.status = 'delivered' THEN now() ELSE w.delivered_at END, lease_until = NULL
           FROM v WHERE w.id = v.id AND w.id = ANY($3::uuid[]) -- by the primary key, whatever the estimate of v
         RETURNING v.ord, w.id, w.task_id, w.flow_run_id, w.url, w.attempts),
       pick AS (
         SELECT u.ord, (SELECT x.id FROM (${lineHead('u', 'e.id NOT IN (SELECT id FROM v)')}) x LIMIT 1) AS head_id
           FROM u WHERE u.attempts = 1),
       ${claimHeads('$2')}
       SELECT h.ord, d.*, COALESCE(t.webhook_secret, b.webhook_secret, d.secret) AS task_secret
         FROM head h JOIN claimed d ON d.id = h.head_id
         LEFT JOIN tasks t ON t.id = d.task_id LEFT JOIN batches b ON b.id = d.batch_id`,
      [JSON.stringify(values), leaseMs, items.map((item) => item.id)],
    );
    // Not claimed here (a concurrent sender took it): that sender sends the later ones.
    const byOrd = new Map(rows.map((row) => [Number(row.ord), row]));
    return items.map((_, i) => {
      const row = byOrd.get(i + 1);
      return row ? this.claimedOf(row) : null;
    });
  }

  /**
   * Gives back a claimed delivery without an attempt (its host's rate is used up): unleased, so the sequence order
   * holds whoever sends it next, and due at `nextAttemptAt`.
   */
  async release(id: string, nextAttemptAt: Date): Promise<void> {
    await this.sql.rows(`UPDATE webhook_deliveries SET lease_until = NULL, next_attempt_at = $2 WHERE id = $1`, [
      id,
      nextAttemptAt,
    ]);
  }

  /** Owner-only read (userId undefined: admin). */
  async findOwned(id: string, userId?: string): Promise<DeliveryRow | null> {
    const rows = await this.sql.rows(
      `SELECT d.* FROM webhook_deliveries d WHERE d.id = $1 ${userId === undefined ? '' : 'AND d.user_id = $2'}`,
      userId === undefined ? [id] : [id, userId],
    );
    return rows.length ? this.rows.fromRow(rows[0]) : null;
  }

  /**
   * Writes deliveries that stand alone (a flow run's), on `tx` (the caller's transaction) or the pool; one whose id
   * is already there is left as it is (a deterministic id makes a repeat the same delivery). Answers the ids written.
   */
  async insertStandalone(deliveries: WebhookDeliveryEntity[], tx: Sql = this.sql): Promise<string[]> {
    if (!deliveries.length) return [];
    const rows = await tx.rows<{ id: string }>(`${this.rows.insertSql()} ON CONFLICT (id) DO NOTHING RETURNING id`, [
      this.rows.records(deliveries),
    ]);
    return rows.map((row) => row.id);
  }

  /**
   * A flow run's delivery (an event, a notify step's), numbered after the run's earlier ones: its line to its URL
   * goes out in that order. False when a delivery with its id is there already.
   */
  async insertForFlowRun(delivery: WebhookDeliveryEntity, tx?: Sql): Promise<boolean> {
    const write = async (q: Sql): Promise<boolean> => {
      // Numbers are handed out one writer at a time per run (the lock lasts until the transaction ends).
      await q.rows(`SELECT pg_advisory_xact_lock(hashtext('webhook-line:' || $1::text))`, [delivery.flowRunId]);
      const [{ next }] = await q.rows<{ next: number }>(
        `SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM webhook_deliveries WHERE flow_run_id = $1`,
        [delivery.flowRunId],
      );
      delivery.sequence = Number(next);
      return (await this.insertStandalone([delivery], q)).length > 0;
    };
    return tx ? write(tx) : this.sql.transaction(write);
  }

  /** A delivery by id, whoever owns it (for the flow step that made it). */
  async find(id: string): Promise<DeliveryRow | null> {
    return this.findOwned(id);
  }

  /** A flow run's deliveries, in the order they were written; `userId` (unless admin) limits them to that owner's. */
  async listForFlowRun(flowRunId: string, userId?: string): Promise<DeliveryRow[]> {
    const rows = await this.sql.rows(
      `SELECT d.* FROM webhook_deliveries d WHERE d.flow_run_id = $1 ${userId === undefined ? '' : 'AND d.user_id = $2'}
        ORDER BY d.sequence, d.created_at, d.id`,
      userId === undefined ? [flowRunId] : [flowRunId, userId],
    );
    return rows.map((row) => this.rows.fromRow(row));
  }

  async listForTask(taskId: string): Promise<DeliveryRow[]> {
    const rows = await this.sql.rows(
      `SELECT d.* FROM webhook_deliveries d WHERE d.task_id = $1 ORDER BY d.sequence, d.created_at`,
      [taskId],
    );
    return rows.map((row) => this.rows.fromRow(row));
  }

  /** Dead letters, newest first, keyset-paginated on (created_at, id). */
  async listDead(
    userId: string | undefined,
    limit: number,
    after?: { createdAt: Date; id: string },
  ): Promise<{ rows: DeliveryRow[]; hasMore: boolean }> {
    const params: unknown[] = [];
    const where = [`d.status = 'dead'`];
    if (userId !== undefined) {
      params.push(userId);
      where.push(`d.user_id = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(d.created_at, d.id) < ($${params.length - 1}, $${params.length})`);
    }
    params.push(limit + 1);
    const rows = await this.sql.rows(
      `SELECT d.* FROM webhook_deliveries d WHERE ${where.join(' AND ')}
        ORDER BY d.created_at DESC, d.id DESC LIMIT $${params.length}`,
      params,
    );
    return { rows: rows.slice(0, limit).map((row) => this.rows.fromRow(row)), hasMore: rows.length > limit };
  }

  /** Back to pending for a replay (same id, a fresh round of retries); null when it is still being delivered. */
  async reopen(id: string, userId?: string): Promise<DeliveryRow | null> {
    const params: unknown[] = [id];
    if (userId !== undefined) params.push(userId);
    const rows = await this.sql.rows(
      `UPDATE webhook_deliveries w SET status = 'pending', round_attempts = 0, next_attempt_at = now(), updated_at = now()
        WHERE w.id = $1 ${userId === undefined ? '' : 'AND w.user_id = $2'} AND w.status IN ('delivered', 'dead')
       RETURNING w.*`,
      params,
    );
    return rows.length ? this.rows.fromRow(rows[0]) : null;
  }

  /**
   * Unfinished deliveries whose attempt is overdue by `graceMs` (their job may be lost: Redis flushed, an enqueue that
   * failed), oldest first, at most `limit`, each marked as due now. Rows a sender holds are left out, and the mark
   * sends the rows taken to the back of the next sweep: rows that still cannot move (their job waits in a backed-up
   * queue) never fill every sweep, so a lost delivery behind them is reached within a few sweeps.
   *
   * Of a line of first attempts (one task's or one flow run's, to one URL) only the first waiting row is taken: its job sends the rest
   * of the line in order, and a job per row behind it would only wait its turn again and again (600 of them held a
   * lost delivery of another task up for seconds on the Postgres queue backend).
   */
  async takeOverdue(graceMs: number, limit: number): Promise<{ id: string; attempts: number }[]> {
    return this.sql.rows<{ id: string; attempts: number }>(
      `WITH due AS (
         SELECT id FROM webhook_deliveries d
          WHERE status IN ('pending', 'failed') AND next_attempt_at < now() - make_interval(secs => $1 / 1000.0)
            AND (lease_until IS NULL OR lease_until < now())
            AND NOT (attempts = 0 AND status = 'pending' AND (
              (task_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM webhook_deliveries e
                 WHERE e.task_id = d.task_id AND e.url = d.url AND e.attempts = 0 AND e.status = 'pending'
                   AND e.sequence < d.sequence))
              OR (flow_run_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM webhook_deliveries e
                 WHERE e.flow_run_id = d.flow_run_id AND e.url = d.url AND e.attempts = 0 AND e.status = 'pending'
                   AND e.sequence < d.sequence))))
          ORDER BY next_attempt_at LIMIT $2
          FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries w SET next_attempt_at = now() FROM due WHERE w.id = due.id
       RETURNING w.id, w.attempts`,
      [graceMs, limit],
    );
  }

  private claimResult(rows: Record<string, unknown>[]): { head: string | null; claimed: ClaimedDelivery | null } {
    const row = rows[0];
    if (!row) return { head: null, claimed: null };
    return { head: (row.head_id as string | null) ?? null, claimed: this.claimedOf(row) };
  }

  /** The claimed delivery of a result row (its columns and `task_secret`), or null when the row claimed none. */
  private claimedOf(row: Record<string, unknown>): ClaimedDelivery | null {
    return row.id ? { delivery: this.rows.fromRow(row), taskSecret: (row.task_secret as string | null) ?? null } : null;
  }

  async statistics(userId?: string): Promise<DeliveryStatistics> {
    const params = userId === undefined ? [] : [userId];
    const scope = userId === undefined ? '' : 'WHERE user_id = $1';
    const [row] = await this.sql.rows<Record<string, string | null>>(
      `SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
              count(*) FILTER (WHERE status = 'delivered') AS delivered,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'dead') AS dead,
              avg(extract(epoch FROM delivered_at - created_at) * 1000) AS mean,
              percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
                ORDER BY extract(epoch FROM delivered_at - created_at) * 1000) AS pcts,
              (SELECT avg((a->>'duration_ms')::numeric) FROM webhook_deliveries w, jsonb_array_elements(w.attempt_log) a
                ${scope}) AS attempt_mean
         FROM webhook_deliveries ${scope}`,
      params,
    );
    const n = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 10) / 10);
    const pcts = (row.pcts as unknown as (number | null)[] | null) ?? [null, null, null];
    const delivered = Number(row.delivered);
    const dead = Number(row.dead);
    return {
      pending: Number(row.pending),
      delivered,
      failed: Number(row.failed),
      dead,
      success_rate: delivered + dead ? Math.round((delivered / (delivered + dead)) * 1000) / 1000 : null,
      latency_ms: { mean: n(row.mean), p50: n(pcts[0]), p95: n(pcts[1]), p99: n(pcts[2]) },
      attempt_duration_ms: { mean: n(row.attempt_mean) },
    };
  }

  // --- Retry jobs (BullMQ attempts) ---

  /**
   * Claims a delivery for a retry or a replay when it has had exactly `attempts` attempts; null when it is not due
   * for one, or when another job has attempted it since (that job goes on with it, so two jobs of one delivery never
   * both retry it).
   */
  async claimRetryAt(deliveryId: string, attempts: number, leaseMs: number): Promise<ClaimedDelivery | null> {
    const rows = await this.sql.rows(
      `WITH head AS (
         SELECT id FROM webhook_deliveries
          WHERE id = $1 AND attempts = $3 AND attempts > 0 AND status IN ('pending', 'failed')),
       ${claimHead(`${AGAIN} AND w.attempts = $3`, '$2')}`,
      [deliveryId, leaseMs, attempts],
    );
    return this.claimResult(rows).claimed;
  }
}
