import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { DomainException, ErrorCode, ValidationException } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { Sql, SqlClient } from '../database/sql-client';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStatus } from '../tasks/task.enums';
import { CACHE_HIT, priceOf } from './credit-prices';
import { CreditAccountEntity, CreditEntryEntity, CreditEntryKind } from './entities/credit.entities';

/** The most credits an account holds (its balance is a Postgres integer). */
const MAX_BALANCE = 2_147_483_647;

/** A price to hold for one task. */
export interface CreditHold {
  taskId: string;
  batchId: string | null;
  amount: number;
  reason: string;
}

interface NewEntry {
  user_id: string;
  kind: CreditEntryKind;
  amount: number;
  task_id: string | null;
  batch_id: string | null;
  reason: string;
}

/** What a terminal status does with the task's open hold. */
const SETTLEMENT: Partial<Record<TaskStatus, string>> = {
  [TaskStatus.Completed]: 'task completed',
  [TaskStatus.Failed]: 'task failed',
  [TaskStatus.Cancelled]: 'task cancelled',
};

const INSERT_ENTRIES = `INSERT INTO credit_entries (user_id, kind, amount, task_id, batch_id, reason)
  SELECT user_id, kind, amount, task_id, batch_id, reason
    FROM jsonb_to_recordset($1::jsonb) AS e(user_id text, kind text, amount int, task_id uuid, batch_id uuid, reason text)`;

/**
 * The credit ledger (CREDITS_ENABLED). A balance moves only under its account's row lock and in the same
 * transaction as the entries that explain it, so Σ grants − Σ holds + Σ releases is always the balance: holds are
 * written in the transaction of the task's insert (or of its retry), captures and releases in the transaction of its
 * terminal transition. Lock order is always a task's row, then accounts in user id order, so none of these waits on
 * another in a cycle.
 */
@Injectable()
export class CreditsRepository {
  private readonly accounts: Repository<CreditAccountEntity>;
  private readonly entriesRepo: Repository<CreditEntryEntity>;
  private readonly prices: Record<string, number>;
  readonly enabled: boolean;

  constructor(
    config: AppConfig,
    private readonly sql: SqlClient,
    @InjectDataSource() dataSource: DataSource,
  ) {
    ({ enabled: this.enabled, prices: this.prices } = config.credits);
    this.accounts = dataSource.getRepository(CreditAccountEntity);
    this.entriesRepo = dataSource.getRepository(CreditEntryEntity);
  }

  /** The price of a task, by its type and (when it has one) its operation. */
  priceOf(task: Pick<TaskEntity, 'type' | 'input'>): number {
    return priceOf(this.prices, task.type, task.input);
  }

  /**
   * Takes the holds from the user's balance on the caller's transaction, or throws 403 insufficient_credits (and the
   * caller's transaction rolls back: nothing is written). The account's row lock, held until that transaction ends,
   * makes concurrent submits of one user take their turns, so none spends credits another has already held.
   */
  async holdOn(tx: Sql, userId: string, holds: CreditHold[]): Promise<void> {
    const required = holds.reduce((sum, h) => sum + h.amount, 0);
    if (required === 0) return;
    const [account] = await tx.rows<{ balance: number }>(
      `SELECT balance FROM credit_accounts WHERE user_id = $1 FOR UPDATE`,
      [userId],
    );
    const balance = account?.balance ?? 0;
    if (balance < required) throw insufficientCredits(required, balance);
    await tx.rows(`UPDATE credit_accounts SET balance = balance - $2, updated_at = now() WHERE user_id = $1`, [
      userId,
      required,
    ]);
    const entries: NewEntry[] = holds
      .filter((h) => h.amount > 0)
      .map((h) => ({
        user_id: userId,
        kind: CreditEntryKind.Hold,
        amount: h.amount,
        task_id: h.taskId,
        batch_id: h.batchId,
        reason: h.reason,
      }));
    await tx.rows(INSERT_ENTRIES, [JSON.stringify(entries)]);
  }

  /**
   * Settles the open holds of tasks that have just reached a terminal status, on the transaction of that transition:
   * a completed task captures its hold (a cached result only the `cache_hit` price, the rest released), a failed or
   * cancelled one releases it. Only what is still held is settled, so settling twice changes nothing.
   */
  async settleOn(tx: Sql, tasks: readonly TaskEntity[]): Promise<void> {
    const ended = tasks.filter((t) => SETTLEMENT[t.status] !== undefined);
    if (!ended.length) return;
    const open = await tx.rows<{ task_id: string; user_id: string; batch_id: string | null; held: number }>(
      `SELECT task_id, user_id, (array_agg(batch_id))[1] AS batch_id,
              sum(CASE kind WHEN 'hold' THEN amount ELSE -amount END)::int AS held
         FROM credit_entries
        WHERE task_id = ANY($1::uuid[]) AND kind <> 'grant'
        GROUP BY task_id, user_id`,
      [ended.map((t) => t.id)],
    );
    const byId = new Map(ended.map((t) => [t.id, t]));
    const entries: NewEntry[] = [];
    const released = new Map<string, number>();
    for (const hold of open) {
      const task = byId.get(hold.task_id);
      if (!task || hold.held <= 0) continue;
      const spend =
        task.status !== TaskStatus.Completed
          ? 0
          : task.cached
            ? Math.min(hold.held, this.prices[CACHE_HIT])
            : hold.held;
      const reason =
        task.status === TaskStatus.Completed && task.cached
          ? 'task completed from the cache'
          : SETTLEMENT[task.status]!;
      const entry = { user_id: hold.user_id, task_id: hold.task_id, batch_id: hold.batch_id, reason };
      if (spend > 0) entries.push({ ...entry, kind: CreditEntryKind.Capture, amount: spend });
      if (hold.held > spend) {
        entries.push({ ...entry, kind: CreditEntryKind.Release, amount: hold.held - spend });
        released.set(hold.user_id, (released.get(hold.user_id) ?? 0) + hold.held - spend);
      }
    }
    if (!entries.length) return;
    if (released.size) {
      const users = [...released.keys()].sort();
      await tx.rows(`SELECT 1 FROM credit_accounts WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE`, [
        users,
      ]);
      await tx.rows(
        `UPDATE credit_accounts AS a SET balance = a.balance + r.amount, updated_at = now()
           FROM jsonb_to_recordset($1::jsonb) AS r(user_id text, amount int)
          WHERE a.user_id = r.user_id`,
        [JSON.stringify(users.map((user_id) => ({ user_id, amount: released.get(user_id) })))],
      );
    }
    await tx.rows(INSERT_ENTRIES, [JSON.stringify(entries)]);
  }

  /** Adds credits to a user's balance (the account is made on the first grant); answers the new balance. */
  async grant(userId: string, amount: number, reason: string): Promise<number> {
    return this.sql.transaction(async (tx) => {
      const [account] = await tx.rows<{ balance: number }>(
        `INSERT INTO credit_accounts (user_id, balance, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (user_id) DO UPDATE SET balance = credit_accounts.balance + EXCLUDED.balance, updated_at = now()
          WHERE credit_accounts.balance::bigint + EXCLUDED.balance <= ${MAX_BALANCE}
         RETURNING balance`,
        [userId, amount],
      );
      if (!account) {
        throw new ValidationException([
          { field: 'amount', message: `amount would take the balance past ${MAX_BALANCE}, the most an account holds` },
        ]);
      }
      const entry: NewEntry = {
        user_id: userId,
        kind: CreditEntryKind.Grant,
        amount,
        task_id: null,
        batch_id: null,
        reason,
      };
      await tx.rows(INSERT_ENTRIES, [JSON.stringify([entry])]);
      return account.balance;
    });
  }

  /** A user's account, or null when nothing was ever granted to them. */
  findAccount(userId: string): Promise<CreditAccountEntity | null> {
    return this.accounts.findOneBy({ userId });
  }

  /** A user's entries, newest first, keyset-paginated on the id; one extra row tells whether a next page exists. */
  async listEntries(
    userId: string,
    limit: number,
    beforeId?: string,
  ): Promise<{ rows: CreditEntryEntity[]; hasMore: boolean }> {
    const qb = this.entriesRepo.createQueryBuilder('e').where('e.user_id = :userId', { userId });
    if (beforeId !== undefined) qb.andWhere('e.id < :beforeId', { beforeId });
    const rows = await qb
      .orderBy('e.id', 'DESC')
      .limit(limit + 1)
      .getMany();
    return { rows: rows.slice(0, limit), hasMore: rows.length > limit };
  }
}

export function insufficientCredits(required: number, balance: number): DomainException {
  return new DomainException(ErrorCode.InsufficientCredits, `needs ${required} credits, balance ${balance}`, {
    required,
    balance,
  });
}
