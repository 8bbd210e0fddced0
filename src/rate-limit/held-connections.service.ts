import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../queue/redis.service';

/**
 * How long a place counts in Redis without renewal. Every process renews its places every third of it, so the places
 * of a process that died without a word are free again within this long.
 */
export const HELD_LEASE_MS = 60_000;

/** What a client past a cap is told to wait before trying again (a place frees when any of its streams ends). */
const RETRY_AFTER_SECONDS = 5;

/** Takes a place if there is one: answers -1, or how many places the user already holds. */
const ACQUIRE_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[4]) then return held end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return -1
`;

/** A place taken; `release` gives it back (calling it again does nothing). */
export interface HeldPlace {
  release(): void;
}

/** Why a place was refused: the user's cap (counted across processes) or this process's. */
export interface HeldRefusal {
  scope: 'user' | 'process';
  limit: number;
  held: number;
}

type Scripts = { heldAcquire(...args: (string | number)[]): Promise<number> };

/**
 * Connections a request holds open for long — an event stream for a task's whole life, a `Prefer: wait`, a
 * synchronous route of the sources — are capped per user across every API process (HELD_CONNECTIONS_PER_USER,
 * counted in Redis as leases in a sorted set per user) and per process (HELD_CONNECTIONS_PER_PROCESS): the rate limit
 * counts requests as they open, so without this one user could hold thousands of sockets. While Redis is away the
 * user cap is not counted (each process's own cap still holds).
 */
@Injectable()
export class HeldConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('HeldConnections');
  /** The places this process holds: lease id → user id. */
  private readonly held = new Map<string, string>();
  private readonly perUser: number;
  private readonly perProcess: number;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    config: AppConfig,
    private readonly redis: RedisService,
  ) {
    this.perUser = config.heldConnections.perUser;
    this.perProcess = config.heldConnections.perProcess;
    redis.client.defineCommand('heldAcquire', { numberOfKeys: 1, lua: ACQUIRE_SCRIPT });
    this.renewal = setInterval(() => this.renew(), HELD_LEASE_MS / 3).unref();
  }

  /** Takes a place for one held connection of `userId`, or says which cap refused it. */
  async acquire(userId: string): Promise<HeldPlace | HeldRefusal> {
    if (this.perProcess > 0 && this.held.size >= this.perProcess) {
      return { scope: 'process', limit: this.perProcess, held: this.held.size };
    }
    const lease = randomUUID();
    if (this.perUser > 0) {
      const now = Date.now();
      try {
        const held = await (this.redis.client as unknown as Scripts).heldAcquire(
          this.keyOf(userId),
          now,
          now + HELD_LEASE_MS,
          lease,
          this.perUser,
          HELD_LEASE_MS,
        );
        if (held >= 0) return { scope: 'user', limit: this.perUser, held };
      } catch (err) {
        this.logger.warn(`held connection not counted for its user: ${(err as Error).message}`);
      }
    }
    this.held.set(lease, userId);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(lease);
        if (this.perUser > 0) {
          this.redis.client.zrem(this.keyOf(userId), lease).catch(() => undefined); // else it lapses by itself
        }
      },
    };
  }

  /** Like acquire, but a refusal is a 429 with Retry-After (set on `reply`) whose message names the cap. */
  async acquireOrRefuse(userId: string, reply: { header(name: string, value: string): unknown }): Promise<HeldPlace> {
    const place = await this.acquire(userId);
    if ('release' in place) return place;
    void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    throw new DomainException(ErrorCode.RateLimited, refusalMessage(place), {
      limit: place.limit,
      scope: place.scope,
      retry_after_seconds: RETRY_AFTER_SECONDS,
    });
  }

  /** How many places this process holds now. */
  get size(): number {
    return this.held.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.renewal);
  }

  /** Pushes back the expiry of every place this process holds (and puts back any Redis lost meanwhile). */
  private renew(): void {
    if (this.perUser <= 0 || this.held.size === 0 || !this.redis.isReady) return;
    const expiry = Date.now() + HELD_LEASE_MS;
    const pipeline = this.redis.client.pipeline();
    const users = new Set<string>();
    for (const [lease, userId] of this.held) {
      pipeline.zadd(this.keyOf(userId), expiry, lease);
      users.add(userId);
    }
    for (const userId of users) pipeline.pexpire(this.keyOf(userId), HELD_LEASE_MS);
    pipeline.exec().catch((err: Error) => this.logger.warn(`held connections not renewed: ${err.message}`));
  }

  private keyOf(userId: string): string {
    return this.redis.key('held', userId);
  }
}

export function refusalMessage(refusal: HeldRefusal): string {
  return refusal.scope === 'user'
    ? `you have ${refusal.held} connections held open (event streams and waiting requests) and the limit is ` +
        `${refusal.limit} (HELD_CONNECTIONS_PER_USER); close one, or retry in ${RETRY_AFTER_SECONDS} s`
    : `this server has ${refusal.held} connections held open (event streams and waiting requests) and its limit ` +
        `is ${refusal.limit} (HELD_CONNECTIONS_PER_PROCESS); retry in ${RETRY_AFTER_SECONDS} s`;
}
