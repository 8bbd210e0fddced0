import { Column, Entity, PrimaryColumn, Unique } from 'typeorm';

/**
 * A row of `api_keys`. Only the SHA-256 of a key is kept; `prefix` is the non-secret start of the key, shown in lists
 * so an admin can tell keys apart.
 */
@Entity('api_keys')
@Unique('api_keys_key_hash_key', ['keyHash'])
export class ApiKeyEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  owner: string;

  @Column('text')
  name: string;

  /** Written once and only ever used to find a row: not selected unless asked for. */
  @Column('text', { name: 'key_hash', select: false })
  keyHash?: string;

  @Column('text')
  prefix: string;

  /** What the key may do (`tasks`, `queue:read`, `queue:write`). The values are stored: never rename one. */
  @Column('text', { array: true, default: () => `'{tasks}'` })
  scopes: string[];

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'last_used_at', nullable: true })
  lastUsedAt: Date | null;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt: Date | null;
}
