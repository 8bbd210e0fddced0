import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { ApiKeyEntity } from './entities/api-key.entity';

/** A key as the service reads it: every column but its hash. */
export type ApiKeyRow = Omit<ApiKeyEntity, 'keyHash'>;

/** The `api_keys` table. The hash is written once and only ever used to find a row; no method returns it. */
@Injectable()
export class ApiKeysRepository {
  private readonly repo: Repository<ApiKeyEntity>;

  constructor(@InjectDataSource() dataSource: DataSource) {
    this.repo = dataSource.getRepository(ApiKeyEntity);
  }

  /** Stamped with the database's clock, like every other write of the table. */
  async insert(key: Pick<ApiKeyEntity, 'id' | 'owner' | 'name' | 'keyHash' | 'prefix' | 'scopes'>): Promise<ApiKeyRow> {
    const { raw } = await this.repo
      .createQueryBuilder()
      .insert()
      .values({ ...key, createdAt: () => 'now()' })
      .returning('created_at')
      .execute();
    const [{ created_at: createdAt }] = raw as { created_at: Date }[];
    return {
      id: key.id,
      owner: key.owner,
      name: key.name,
      prefix: key.prefix,
      scopes: key.scopes,
      createdAt,
      lastUsedAt: null,
      revokedAt: null,
    };
  }

  /** Every key, newest first (revoked ones included: the list is the audit trail). */
  list(): Promise<ApiKeyRow[]> {
    return this.repo.find({ order: { createdAt: 'DESC', id: 'ASC' } });
  }

  findByHash(keyHash: string): Promise<ApiKeyRow | null> {
    return this.repo.findOneBy({ keyHash });
  }

  /** Sets revoked_at (kept as it was when already revoked); the key's hash, or null when there is no such key. */
  async revoke(id: string): Promise<{ keyHash: string } | null> {
    const { raw } = await this.repo
      .createQueryBuilder()
      .update()
      .set({ revokedAt: () => 'COALESCE(revoked_at, now())' })
      .where('id = :id', { id })
      .returning('key_hash')
      .execute();
    const rows = raw as { key_hash: string }[];
    return rows[0] ? { keyHash: rows[0].key_hash } : null;
  }

  /** Records a use; skipped in SQL when another process recorded one in the last minute. */
  async touch(id: string): Promise<void> {
    await this.repo
      .createQueryBuilder()
      .update()
      .set({ lastUsedAt: () => 'now()' })
      .where(`id = :id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, { id })
      .execute();
  }
}
