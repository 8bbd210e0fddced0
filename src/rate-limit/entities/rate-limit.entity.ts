import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A row of `rate_limits`, written by rate-limiter-flexible's Postgres store only (see PostgresRateLimiters); the
 * columns are the library's. UNLOGGED, which entities cannot say: that lives in the migration.
 */
@Entity('rate_limits')
export class RateLimitEntity {
  /** `<counter>:<user id or client address>`. */
  @PrimaryColumn('varchar', { length: 255 })
  key: string;

  @Column('int', { default: 0 })
  points: number;

  /** When the window ends, epoch ms (bigint: a string from `pg`). */
  @Column('bigint', { nullable: true })
  expire: string | null;
}
