import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A row of `held_connections` (Postgres backend): one place a user's held connection takes, counted by every API
 * process, until it is given back or its lease lapses. The table is UNLOGGED (the schema builder cannot say so): after
 * a crash of Postgres it starts empty, which frees every place, as the leases would.
 */
@Entity('held_connections')
@Index('held_connections_user_idx', ['userId'])
export class HeldConnectionEntity {
  @PrimaryColumn('uuid', { name: 'lease_id' })
  leaseId: string;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt: Date;
}
