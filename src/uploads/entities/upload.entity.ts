import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A row of `uploads`: a file a user sent (POST /api/v1/media/uploads), kept in storage under `key` until `expires_at`
 * and usable by its owner as `upload:<id>` in any media field. The content type is the one sniffed from the bytes.
 */
@Entity('uploads')
@Index('uploads_expires_at_idx', ['expiresAt'])
@Index('uploads_created_idx', ['createdAt'])
export class UploadEntity {
  @PrimaryColumn('uuid')
  id: string;

  /** The user id (a token's `sub`, an API key's owner). */
  @Column('text')
  owner: string;

  @Column('text')
  key: string;

  @Column('text', { name: 'content_type' })
  contentType: string;

  @Column('bigint', { transformer: { to: (v: number) => v, from: (v: string | number) => Number(v) } })
  size: number;

  @Column('text')
  sha256: string;

  /** The name the client gave the file part (sanitised), for its own reference; nothing relies on it. */
  @Column('text', { nullable: true })
  filename: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt: Date;
}
