import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

export interface ApiKeyRow {
  id: string;
  owner: string;
  name: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  scopes: string[];
}

const COLUMNS = 'id, owner, name, prefix, scopes, created_at, last_used_at, revoked_at';

function toRow(row: Record<string, unknown>): ApiKeyRow {
  return {
    id: row.id as string,
    owner: row.owner as string,
    name: row.name as string,
    prefix: row.prefix as string,
    createdAt: row.created_at as Date,
    lastUsedAt: (row.last_used_at as Date | null) ?? null,
    revokedAt: (row.revoked_at as Date | null) ?? null,
    scopes: row.scopes as string[],
  };
}

/** The `api_keys` table. The hash is written once and only ever used to find a row; no method returns it. */
@Injectable()
export class ApiKeysRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(key: {
    id: string;
    owner: string;
    name: string;
    keyHash: string;
    prefix: string;
    scopes: readonly string[];
  }): Promise<ApiKeyRow> {
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `INSERT INTO api_keys (id, owner, name, key_hash, prefix, scopes, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, now()) RETURNING ${COLUMNS}`,
      [key.id, key.owner, key.name, key.keyHash, key.prefix, key.scopes],
    );
    return toRow(rows[0]);
  }

  /** Every key, newest first (revoked ones included: the list is the audit trail). */
  async list(): Promise<ApiKeyRow[]> {
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT ${COLUMNS} FROM api_keys ORDER BY created_at DESC, id`,
    );
    return rows.map(toRow);
  }

  async findByHash(keyHash: string): Promise<ApiKeyRow | null> {
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1`,
      [keyHash],
    );
    return rows[0] ? toRow(rows[0]) : null;
  }

  /** Sets revoked_at (kept as it was when already revoked); the key's hash, or null when there is no such key. */
  async revoke(id: string): Promise<{ keyHash: string } | null> {
    const rows = await this.dataSource.query<{ key_hash: string }[]>(
      // As a SELECT over the UPDATE: TypeORM hands back the rows of a plain UPDATE … RETURNING wrapped with a count.
      `WITH r AS (UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING key_hash)
       SELECT key_hash FROM r`,
      [id],
    );
    return rows[0] ? { keyHash: rows[0].key_hash } : null;
  }

  /** Records a use; skipped in SQL when another process recorded one in the last minute. */
  async touch(id: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE api_keys SET last_used_at = now()
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
      [id],
    );
  }
}
