import { Injectable, Logger } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { DomainException, ErrorCode, NotFoundException } from '../common/domain-exception';
import { isUuid } from '../common/uuid';
import { AppConfig } from '../config/app-config';
import { generateApiKey, hashApiKey } from './api-key-secret';
import { ApiKeyScope, DEFAULT_API_KEY_SCOPES } from './api-key-scopes';
import { ApiKeyRow, ApiKeysRepository } from './api-keys.repository';
import { ApiKeyCreatedDto, ApiKeyResponseDto } from './dto/api-key-response.dto';

/** A key longer than this is not one of ours: refused before hashing. */
const MAX_KEY_LENGTH = 200;
/** At most one last_used_at write per key per minute. */
const TOUCH_INTERVAL_MS = 60_000;

export const INVALID_API_KEY = 'invalid API key';

function toResponse(row: ApiKeyRow): ApiKeyResponseDto {
  return {
    id: row.id,
    owner: row.owner,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    created_at: row.createdAt.toISOString(),
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  };
}

/**
 * API keys: created by admins, shown once, stored as SHA-256 hashes, each acting as its owner. Lookups are cached in
 * process for API_KEY_CACHE_TTL_MS (≤ 5 s, unknown keys too, so a flood of wrong keys does not reach Postgres); a
 * revocation drops the entry here at once and reaches other processes when theirs expires.
 */
@Injectable()
export class ApiKeysService {
  private readonly logger = new Logger('ApiKeysService');
  private readonly cache: LRUCache<string, { row: ApiKeyRow | null }> | undefined;
  private readonly touchedAt = new LRUCache<string, number>({ max: 10_000 });

  constructor(
    private readonly keys: ApiKeysRepository,
    config: AppConfig,
  ) {
    const ttl = config.apiKeyCacheTtlMs;
    // ttl 0 means no cache (to lru-cache it would mean no expiry).
    this.cache = ttl > 0 ? new LRUCache({ max: 10_000, ttl, ttlAutopurge: false }) : undefined;
  }

  async create(owner: string, name: string, scopes?: readonly ApiKeyScope[]): Promise<ApiKeyCreatedDto> {
    const { key, hash, prefix } = generateApiKey();
    const wanted = [...new Set(scopes?.length ? scopes : DEFAULT_API_KEY_SCOPES)];
    const row = await this.keys.insert({ id: randomUUID(), owner, name, keyHash: hash, prefix, scopes: wanted });
    const { id, created_at } = toResponse(row);
    return { id, owner: row.owner, name: row.name, key, prefix, scopes: row.scopes, created_at };
  }

  async list(): Promise<ApiKeyResponseDto[]> {
    return (await this.keys.list()).map(toResponse);
  }

  async revoke(id: string): Promise<void> {
    const revoked = isUuid(id) ? await this.keys.revoke(id) : null;
    if (!revoked) throw new NotFoundException('API key', id);
    this.cache?.delete(revoked.keyHash);
  }

  /** The user a key acts as, with the key's scopes; 401 for an unknown or revoked key. */
  async authenticate(key: unknown): Promise<AuthUser> {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new DomainException(ErrorCode.Unauthorized, INVALID_API_KEY);
    }
    const hash = hashApiKey(key);
    let entry = this.cache?.get(hash);
    if (!entry) {
      entry = { row: await this.keys.findByHash(hash) };
      this.cache?.set(hash, entry);
    }
    const row = entry.row;
    if (!row || row.revokedAt) throw new DomainException(ErrorCode.Unauthorized, INVALID_API_KEY);
    this.touch(row.id);
    return { id: row.owner, roles: [], isAdmin: false, scopes: row.scopes };
  }

  /** Fire and forget: a failed write of last_used_at must not fail the request it describes. */
  private touch(id: string): void {
    const now = Date.now();
    const last = this.touchedAt.get(id);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    this.touchedAt.set(id, now);
    this.keys
      .touch(id)
      .catch((err: Error) => this.logger.warn(`last_used_at of API key ${id} not recorded: ${err.message}`));
  }
}
