import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { HELD_LEASE_MS, HeldConnectionLeases } from './held-connection-leases';

/** What a client past a cap is told to wait before trying again (a place frees when any of its streams ends). */
const RETRY_AFTER_SECONDS = 5;

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

/**
 * Connections a request holds open for long — an event stream for a task's whole life, a `Prefer: wait`, a
 * synchronous route of the sources — are capped per user across every API process (HELD_CONNECTIONS_PER_USER,
 * counted as leases in Redis or Postgres, HeldConnectionLeases) and per process (HELD_CONNECTIONS_PER_PROCESS): the
 * rate limit counts requests as they open, so without this one user could hold thousands of sockets. While the store
 * is away the user cap is not counted (each process's own cap still holds).
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
    private readonly leases: HeldConnectionLeases,
  ) {
    this.perUser = config.heldConnections.perUser;
    this.perProcess = config.heldConnections.perProcess;
    this.renewal = setInterval(() => this.renew(), HELD_LEASE_MS / 3).unref();
  }

  /** Takes a place for one held connection of `userId`, or says which cap refused it. */
  async acquire(userId: string): Promise<HeldPlace | HeldRefusal> {
    if (this.perProcess > 0 && this.held.size >= this.perProcess) {
      return { scope: 'process', limit: this.perProcess, held: this.held.size };
    }
    const lease = randomUUID();
    if (this.perUser > 0) {
      try {
        const held = await this.leases.take(userId, lease, this.perUser);
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
          this.leases.release(userId, lease).catch(() => undefined); // else it lapses by itself
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

  /** Pushes back the expiry of every place this process holds (and puts back any the store lost meanwhile). */
  private renew(): void {
    if (this.perUser <= 0 || this.held.size === 0) return;
    this.leases
      .renew(new Map(this.held))
      .catch((err: Error) => this.logger.warn(`held connections not renewed: ${err.message}`));
  }
}

export function refusalMessage(refusal: HeldRefusal): string {
  return refusal.scope === 'user'
    ? `you have ${refusal.held} connections held open (event streams and waiting requests) and the limit is ` +
        `${refusal.limit} (HELD_CONNECTIONS_PER_USER); close one, or retry in ${RETRY_AFTER_SECONDS} s`
    : `this server has ${refusal.held} connections held open (event streams and waiting requests) and its limit ` +
        `is ${refusal.limit} (HELD_CONNECTIONS_PER_PROCESS); retry in ${RETRY_AFTER_SECONDS} s`;
}
