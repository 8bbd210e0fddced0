import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../queue/redis.service';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface ProviderHealth {
  /** Smoothed share of successful calls (1 when nothing is known yet). */
  successRate: number;
  /** Smoothed latency of successful calls, ms (null when nothing is known yet). */
  latencyMs: number | null;
  inFlight: number;
  circuit: CircuitState;
  calls: number;
  failures: number;
}

const EWMA_ALPHA = 0.2;

// Atomic update of one provider's health hash: EWMAs, counters, consecutive failures and the circuit.
const RECORD_SCRIPT = `
local key = KEYS[1]
local ok = tonumber(ARGV[1])
local latency = tonumber(ARGV[2])
local alpha = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local h = redis.call('HMGET', key, 'success', 'latency', 'consecutive', 'circuit')
local success = tonumber(h[1]) or 1
local consecutive = tonumber(h[3]) or 0
success = success + alpha * (ok - success)
redis.call('HINCRBY', key, 'calls', 1)
if ok == 1 then
  local lat = tonumber(h[2])
  if lat == nil then lat = latency else lat = lat + alpha * (latency - lat) end
  redis.call('HSET', key, 'success', success, 'latency', lat, 'consecutive', 0, 'circuit', 'closed')
else
  consecutive = consecutive + 1
  redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'success', success, 'consecutive', consecutive)
  if h[4] == 'half_open' or consecutive >= threshold then
    redis.call('HSET', key, 'circuit', 'open', 'opened_at', now)
  end
end
return 1
`;

// Half-open: after the cool-down exactly one caller gets the trial call (SET NX), the others still see it open.
const ALLOW_SCRIPT = `
local key = KEYS[1]
local trial = KEYS[2]
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local h = redis.call('HMGET', key, 'circuit', 'opened_at')
if h[1] ~= 'open' and h[1] ~= 'half_open' then return 1 end
if now - (tonumber(h[2]) or 0) < cooldown then return 0 end
if redis.call('SET', trial, '1', 'NX', 'PX', cooldown) then
  redis.call('HSET', key, 'circuit', 'half_open')
  return 1
end
return 0
`;

// A leased semaphore: members are task ids, scores their expiry; expired leases free their slot.
const ACQUIRE_SCRIPT = `
local key = KEYS[1]
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local member = ARGV[3]
local expires = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) then
  redis.call('ZADD', key, expires, member)
  return 1
end
if redis.call('ZCARD', key) < cap then
  redis.call('ZADD', key, expires, member)
  return 1
end
return 0
`;

/**
 * Live health of each provider, kept in Redis so every worker routes on the same facts (DESIGN decision 6), and
 * the cluster-wide concurrency caps (decision 5).
 */
@Injectable()
export class ProviderHealthService {
  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {}

  private healthKey(name: string): string {
    return this.redis.key('provider', name, 'health');
  }

  private leaseKey(name: string): string {
    return this.redis.key('provider', name, 'leases');
  }

  async record(name: string, ok: boolean, latencyMs: number): Promise<void> {
    await this.redis.client.eval(
      RECORD_SCRIPT,
      1,
      this.healthKey(name),
      ok ? 1 : 0,
      Math.round(latencyMs),
      EWMA_ALPHA,
      this.config.circuit.threshold,
      Date.now(),
    );
  }

  /** False while the provider's circuit is open; once the cool-down is over, true for exactly one trial caller. */
  async allow(name: string): Promise<boolean> {
    const cooldownMs = this.config.circuit.cooldownMs;
    const allowed = await this.redis.client.eval(
      ALLOW_SCRIPT,
      2,
      this.healthKey(name),
      this.redis.key('provider', name, 'trial'),
      Date.now(),
      cooldownMs,
    );
    return allowed === 1;
  }

  /** Takes one of the provider's `cap` slots for `taskId` until `ttlMs` from now (idempotent per task). */
  async acquire(name: string, taskId: string, cap: number, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const got = await this.redis.client.eval(ACQUIRE_SCRIPT, 1, this.leaseKey(name), now, cap, taskId, now + ttlMs);
    return got === 1;
  }

  async release(name: string, taskId: string): Promise<void> {
    await this.redis.client.zrem(this.leaseKey(name), taskId);
  }

  async snapshot(name: string): Promise<ProviderHealth> {
    const [h, inFlight] = await Promise.all([
      this.redis.client.hgetall(this.healthKey(name)),
      this.redis.client.zcount(this.leaseKey(name), Date.now(), '+inf'),
    ]);
    let circuit = (h.circuit as CircuitState | undefined) ?? 'closed';
    if (circuit === 'open' && Date.now() - Number(h.opened_at ?? 0) >= this.config.circuit.cooldownMs) {
      circuit = 'half_open';
    }
    return {
      successRate: h.success === undefined ? 1 : Math.round(Number(h.success) * 1000) / 1000,
      latencyMs: h.latency === undefined ? null : Math.round(Number(h.latency)),
      inFlight,
      circuit,
      calls: Number(h.calls ?? 0),
      failures: Number(h.failures ?? 0),
    };
  }
}
