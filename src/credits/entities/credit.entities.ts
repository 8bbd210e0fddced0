import { Check, Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** The kinds of ledger entries. Stored values: never rename one. */
export enum CreditEntryKind {
  /** Credits added by an admin. */
  Grant = 'grant',
  /** A task's price taken from the balance at submit (or at a retry), until the task ends. */
  Hold = 'hold',
  /** The part of a hold a completed task spent: it stays taken. */
  Capture = 'capture',
  /** The part of a hold given back to the balance (a failed or cancelled task, a cheaper cached result). */
  Release = 'release',
}

/**
 * A row of `credit_accounts`: a user's spendable credits. Only ever changed under its row lock, in the transaction
 * that writes the ledger entries explaining the change, so the balance is always Σ grants − Σ holds + Σ releases.
 */
@Entity('credit_accounts')
@Check('credit_accounts_balance_check', 'balance >= 0')
export class CreditAccountEntity {
  @PrimaryColumn('text', { name: 'user_id' })
  userId: string;

  @Column('int')
  balance: number;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;
}

/**
 * A row of `credit_entries`, the append-only ledger (a trigger refuses updates and deletes). `amount` is never
 * negative: the kind says which way it moves the balance. `id` rises with every entry, so it orders the ledger.
 */
@Entity('credit_entries')
@Check('credit_entries_kind_check', `kind IN ('grant', 'hold', 'capture', 'release')`)
@Check('credit_entries_amount_check', 'amount >= 0')
@Index('credit_entries_user_idx', ['userId', 'id'])
@Index('credit_entries_task_idx', ['taskId'], { where: 'task_id IS NOT NULL' })
export class CreditEntryEntity {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text')
  kind: CreditEntryKind;

  @Column('int')
  amount: number;

  @Column('uuid', { name: 'task_id', nullable: true })
  taskId: string | null;

  @Column('uuid', { name: 'batch_id', nullable: true })
  batchId: string | null;

  @Column('text')
  reason: string;

  @Column('timestamptz', { name: 'created_at', default: () => 'now()' })
  createdAt: Date;
}
