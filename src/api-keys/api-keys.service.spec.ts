import { AppConfig } from '../config/app-config';
import { generateApiKey, hashApiKey } from './api-key-secret';
import { ApiKeyScope, scopesAllow } from './api-key-scopes';
import { ApiKeyRow, ApiKeysRepository } from './api-keys.repository';
import { ApiKeysService } from './api-keys.service';

function setup(ttlMs: string) {
  const { key, hash } = generateApiKey();
  const row: ApiKeyRow = {
    id: '6f1c0000-0000-4000-8000-000000000001',
    owner: 'dave',
    name: 'ci',
    prefix: key.slice(0, 11),
    createdAt: new Date(),
    lastUsedAt: null,
    revokedAt: null,
    scopes: ['tasks', 'queue:read'],
  };
  const repo = {
    findByHash: jest.fn((h: string) => Promise.resolve(h === hash ? { ...row } : null)),
    touch: jest.fn().mockResolvedValue(undefined),
    revoke: jest.fn().mockResolvedValue({ keyHash: hash }),
  };
  const config = AppConfig.fromEnv({ NODE_ENV: 'test', API_KEY_CACHE_TTL_MS: ttlMs });
  return { key, row, repo, service: new ApiKeysService(repo as unknown as ApiKeysRepository, config) };
}

describe('ApiKeysService', () => {
  it('generates distinct mt_ keys whose hash is the SHA-256 hex', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^mt_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.hash).toBe(hashApiKey(a.key));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.prefix).toBe(a.key.slice(0, 11));
  });

  it('caches lookups (unknown keys too) and records a use at most once a minute', async () => {
    const { key, repo, service } = setup('5000');
    for (let i = 0; i < 3; i++)
      await expect(service.authenticate(key)).resolves.toEqual({
        id: 'dave',
        roles: [],
        isAdmin: false,
        scopes: ['tasks', 'queue:read'],
      });
    expect(repo.findByHash).toHaveBeenCalledTimes(1);
    expect(repo.touch).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 2; i++) await expect(service.authenticate('mt_wrong')).rejects.toThrow('invalid API key');
    expect(repo.findByHash).toHaveBeenCalledTimes(2);
  });

  it('drops the cached entry on revoke, and does not cache at all with a TTL of 0', async () => {
    const { key, repo, service } = setup('5000');
    await service.authenticate(key);
    await service.revoke('6f1c0000-0000-4000-8000-000000000001');
    repo.findByHash.mockResolvedValue(null);
    await expect(service.authenticate(key)).rejects.toThrow('invalid API key');

    const uncached = setup('0');
    await uncached.service.authenticate(uncached.key);
    await uncached.service.authenticate(uncached.key);
    expect(uncached.repo.findByHash).toHaveBeenCalledTimes(2);
  });

  it('refuses a TTL above 5 s at boot', () => {
    expect(() => AppConfig.fromEnv({ NODE_ENV: 'test', API_KEY_CACHE_TTL_MS: '60000' })).toThrow(
      /API_KEY_CACHE_TTL_MS/,
    );
  });

  it('reads queue:write as including queue:read, and nothing else', () => {
    expect(scopesAllow(['queue:write'], ApiKeyScope.QueueRead)).toBe(true);
    expect(scopesAllow(['queue:write'], ApiKeyScope.QueueWrite)).toBe(true);
    expect(scopesAllow(['queue:write'], ApiKeyScope.Tasks)).toBe(false);
    expect(scopesAllow(['queue:read'], ApiKeyScope.QueueWrite)).toBe(false);
    expect(scopesAllow(['tasks'], ApiKeyScope.QueueRead)).toBe(false);
    expect(scopesAllow([], ApiKeyScope.Tasks)).toBe(false);
  });
});
