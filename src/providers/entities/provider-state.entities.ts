import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';

// The Postgres backend's provider state (see PostgresProviderHealth), read and written by hand-written SQL only. The
// tables are UNLOGGED, which entities cannot say: that lives in their migration. Epoch-millisecond columns are
// bigint, which `pg` returns as strings.

/** One row per provider: its smoothed health, its circuit, and the row every admission locks. */
@Entity('provider_health')
@Check('provider_health_circuit_check', `circuit IN ('closed', 'open', 'half_open')`)
export class ProviderHealthEntity {
  @PrimaryColumn('text')
  provider: string;

  @Column('double precision', { nullable: true })
  success: number | null;

  @Column('double precision', { nullable: true })
  latency: number | null;

  @Column('int', { name: 'consecutive_failures', default: 0 })
  consecutiveFailures: number;

  @Column('text', { default: 'closed' })
  circuit: string;

  @Column('bigint', { name: 'opened_at', nullable: true })
  openedAt: string | null;

  /** Until when the trial call of a half-open circuit is taken. */
  @Column('bigint', { name: 'trial_until', nullable: true })
  trialUntil: string | null;

  /** The whole line is dropped once nobody has asked in it until then. */
  @Column('bigint', { name: 'line_expires_at', nullable: true })
  lineExpiresAt: string | null;

  @Column('bigint', { default: 0 })
  calls: string;

  @Column('bigint', { default: 0 })
  failures: string;
}

/** A slot of a capped provider held by a task until `expires_at`. */
@Entity('provider_leases')
export class ProviderLeaseEntity {
  @PrimaryColumn('text')
  provider: string;

  @PrimaryColumn('text', { name: 'task_id' })
  taskId: string;

  @Column('bigint', { name: 'expires_at' })
  expiresAt: string;
}

/** A task waiting for a slot: lower ticket first; it leaves the line when it stops asking. */
@Entity('provider_line')
@Index('provider_line_order_idx', ['provider', 'ticket', 'taskId'])
export class ProviderLineEntity {
  @PrimaryColumn('text')
  provider: string;

  @PrimaryColumn('text', { name: 'task_id' })
  taskId: string;

  @Column('double precision')
  ticket: number;

  @Column('bigint', { name: 'seen_at' })
  seenAt: string;
}
