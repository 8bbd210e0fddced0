import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A row of `webhook_host_attempts` (Postgres backend): the delivery attempts to one host in one second, shared by every
 * worker for WEBHOOK_HOST_RATE_PER_SECOND. The table is UNLOGGED (the schema builder cannot say so): counts of past
 * seconds are worth nothing after a crash of Postgres.
 */
@Entity('webhook_host_attempts')
export class WebhookHostAttemptEntity {
  @PrimaryColumn('text')
  host: string;

  /** Seconds since the epoch, by Postgres' clock. */
  @PrimaryColumn('bigint', { name: 'window_start' })
  windowStart: string;

  @Column('int')
  attempts: number;
}
