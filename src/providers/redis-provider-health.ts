import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../queue/redis.service';
import {
  Admission,
  CircuitState,
  EWMA_ALPHA,
  LINE_TTL_MS,
  ProviderHealth,
  ProviderHealthService,
} from './provider-health.service';

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

// One round trip to admit a call: the circuit first (half-open: after the cool-down exactly one caller gets the
// trial call, by SET NX), then a slot of the leased semaphore (members are task ids, scores their expiry; expired
// leases free their slot). When slots are short, callers queue in a line ranked by their ticket (priority, then
// age), so a freed slot goes to the oldest waiter rather than to whichever retries first; a waiter not seen for
// `stale` ms (cancelled, or its worker gone) leaves the line. 1 = admitted, 0 = circuit open, -1 = no free slot.
const ADMIT_SCRIPT = `
local health = KEYS[1]
local trial = KEYS[2]
local leases = KEYS[3]
local line = KEYS[4]
local seen = KEYS[5]
local now = tonumber(ARGV[1])
local cooldown = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local member = ARGV[4]
local expires = tonumber(ARGV[5])
local ticket = tonumber(ARGV[6])
local stale = tonumber(ARGV[7])
local h = redis.call('HMGET', health, 'circuit', 'opened_at')
local trialTaken = false
if h[1] == 'open' or h[1] == 'half_open' then
  if now - (tonumber(h[2]) or 0) < cooldown then return 0 end
  if not redis.call('SET', trial, '1', 'NX', 'PX', cooldown) then return 0 end
  trialTaken = true
end
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
if not redis.call('ZSCORE', leases, member) then
  local free = cap - redis.call('ZCARD', leases)
  if free <= 0 or redis.call('ZCARD', line) > 0 then
    local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)
    for _, waiter in ipairs(gone) do
      redis.call('ZREM', line, waiter)
      redis.call('ZREM', seen, waiter)
    end
    redis.call('ZADD', line, 'NX', ticket, member)
    redis.call('ZADD', seen, now, member)
    redis.call('PEXPIRE', line, stale * 2)
    redis.call('PEXPIRE', seen, stale * 2)
    if free <= 0 or redis.call('ZRANK', line, member) >= free then
      if trialTaken then redis.call('DEL', trial) end
      return -1
    end
    redis.call('ZREM', line, member)
    redis.call('ZREM', seen, member)
  end
end
redis.call('ZADD', leases, expires, member)
if trialTaken then redis.call('HSET', health, 'circuit', 'half_open') end
return 1
`;

/** The member a trailing ZRANGE 0 0 of a pipeline or transaction answered, if any. */
function headOf(results: [Error | null, unknown][] | null): string | undefined {
  const last = results?.[results.length - 1];
  return !last || last[0] || !Array.isArray(last[1]) ? undefined : (last[1][0] as string | undefined);
}

/** The scripts as ioredis commands: on the client they answer a promise, on a pipeline they queue. */
interface HealthScripts<R = Promise<number>> {
  providerAdmit(...args: (string | number)[]): R;
  providerRecord(...args: (string | number)[]): R;
}

/** Provider health and caps in Redis: each admission and each outcome is one Lua script, run atomically. */
@Injectable()
export class RedisProviderHealth extends ProviderHealthService {
  constructor(
    private readonly redis: RedisService,
    config: AppConfig,
  ) {
    super(config);
    // Defined commands go as EVALSHA: the scripts' text is sent once, not with every call.
    redis.client.defineCommand('providerAdmit', { numberOfKeys: 5, lua: ADMIT_SCRIPT });
    redis.client.defineCommand('providerRecord', { numberOfKeys: 1, lua: RECORD_SCRIPT });
  }

  /**
   * `<prefix>:{provider}:<name>:<part>`: the admission script, the transactions and the snapshot pipeline span a
   * provider's keys and several providers', so on a Redis Cluster they all share one hash tag (one slot).
   */
  private providerKey(name: string, part: 'health' | 'trial' | 'leases' | 'line' | 'line-seen'): string {
    return this.redis.key('{provider}', name, part);
  }

  private healthKey(name: string): string {
    return this.providerKey(name, 'health');
  }

  private lineKey(name: string): string {
    return this.providerKey(name, 'line');
  }

  private leaseKey(name: string): string {
    return this.providerKey(name, 'leases');
  }

  /**
   * Three commands sent one by one, not as a pipeline of their own: the client pipelines every command of an
   * event-loop turn (RedisService), so the outcomes of the tasks that end together leave in one write.
   */
  override async record(name: string, ok: boolean, latencyMs: number, release?: string): Promise<string | undefined> {
    const client = this.redis.client;
    const freed = release ? client.zrem(this.leaseKey(name), release) : undefined;
    const recorded = (client as unknown as HealthScripts).providerRecord(
      this.healthKey(name),
      ok ? 1 : 0,
      Math.round(latencyMs),
      EWMA_ALPHA,
      this.config.circuit.threshold,
      Date.now(),
    );
    const head = release ? client.zrange(this.lineKey(name), 0, 0) : undefined;
    const [, , first] = await Promise.all([freed, recorded, head]);
    return first?.[0];
  }

  override async admit(
    name: string,
    taskId: string,
    cap: number,
    ttlMs: number,
    line: { ticket: number; staleMs: number } = { ticket: Date.now(), staleMs: 10_000 },
  ): Promise<Admission> {
    const now = Date.now();
    const result = await (this.redis.client as unknown as HealthScripts).providerAdmit(
      this.healthKey(name),
      this.providerKey(name, 'trial'),
      this.leaseKey(name),
      this.lineKey(name),
      this.providerKey(name, 'line-seen'),
      now,
      this.config.circuit.cooldownMs,
      cap,
      taskId,
      now + ttlMs,
      line.ticket,
      line.staleMs,
    );
    return result === 1 ? 'admitted' : result === 0 ? 'circuit_open' : 'capped';
  }

  override async join(name: string, taskIds: string[], ticket: number): Promise<void> {
    if (taskIds.length === 0) return;
    const now = Date.now();
    const line = this.lineKey(name);
    const seen = this.providerKey(name, 'line-seen');
    const multi = this.redis.client.multi();
    for (const id of taskIds) multi.zadd(line, 'NX', ticket, id).zadd(seen, now, id);
    await multi.pexpire(line, LINE_TTL_MS).pexpire(seen, LINE_TTL_MS).exec();
  }

  override async release(name: string, taskId: string): Promise<string | undefined> {
    const results = await this.redis.client
      .multi()
      .zrem(this.leaseKey(name), taskId)
      .zrem(this.lineKey(name), taskId)
      .zrem(this.providerKey(name, 'line-seen'), taskId)
      .zrange(this.lineKey(name), 0, 0)
      .exec();
    return headOf(results);
  }

  override async snapshots(names: string[]): Promise<ProviderHealth[]> {
    const pipeline = this.redis.client.pipeline();
    const now = Date.now();
    for (const name of names) pipeline.hgetall(this.healthKey(name)).zcount(this.leaseKey(name), now, '+inf');
    const results = (await pipeline.exec()) ?? [];
    return names.map((_, i) => {
      const [hErr, h] = results[2 * i] as [Error | null, Record<string, string>];
      const [zErr, inFlight] = results[2 * i + 1] as [Error | null, number];
      const failure = hErr ?? zErr;
      if (failure) throw failure;
      return this.toHealth(
        {
          circuit: h.circuit as CircuitState | undefined,
          openedAt: h.opened_at === undefined ? null : Number(h.opened_at),
          success: h.success === undefined ? null : Number(h.success),
          latency: h.latency === undefined ? null : Number(h.latency),
          calls: Number(h.calls ?? 0),
          failures: Number(h.failures ?? 0),
        },
        inFlight,
      );
    });
  }
}
