import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A row of `admin_session_revocations` (Postgres backend): a dashboard session signed out before it expires. */
@Entity('admin_session_revocations')
export class AdminSessionRevocationEntity {
  @PrimaryColumn('text', { name: 'session_id' })
  sessionId: string;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt: Date;
}
