import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type IdempotencyKeyState = 'in_flight' | 'done';

/**
 * A row of `idempotency_keys`: one per (user, Idempotency-Key), claimed before the request runs and completed with
 * its answer.
 */
@Entity('idempotency_keys')
@Check('idempotency_keys_state_check', `state IN ('in_flight', 'done')`)
@Index('idempotency_keys_created_idx', ['createdAt'])
export class IdempotencyKeyEntity {
  @PrimaryColumn('text', { name: 'user_id' })
  userId: string;

  @PrimaryColumn('text')
  key: string;

  @Column('text', { name: 'request_hash' })
  requestHash: string;

  @Column('text')
  state: IdempotencyKeyState;

  @Column('int', { name: 'status_code', nullable: true })
  statusCode: number | null;

  @Column('jsonb', { nullable: true })
  response: unknown;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  /** Tells one claim of a key from the next, so a late request cannot record its answer over a newer claim's. */
  @Column('uuid', { name: 'lease_token', nullable: true })
  leaseToken: string | null;

  /** Null on keys claimed before leases existed: they lapse an hour after their claim. */
  @Column('timestamptz', { name: 'lease_expires_at', nullable: true })
  leaseExpiresAt: Date | null;
}
