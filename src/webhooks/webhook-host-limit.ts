import { Injectable, Logger } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { HOST_WINDOW_MS, HostWindow, WebhookHostAttempts } from './webhook-host-attempts';

/**
 * Slots a process takes from a host's shared count at once: a fiftieth of the rate (none under 100 a second). Each
 * attempt then costs no round trip to Redis or Postgres until they are used; those left when the window ends are
 * lost, so the processes together stay under the rate, never over it.
 */
const SLOTS_PER_TAKE = 1 / 50;
/** When fewer than this share of a take's slots are left, the next take starts, so an attempt seldom waits for one. */
const REFILL_BELOW = 1 / 4;

/** Slots of one host this process holds, in the window that ends at `windowEnd` (ms since the epoch). */
interface HeldSlots {
  windowEnd: number;
  left: number;
  /** The window came near its limit: one attempt counted at a time until it ends, so no slot is held back. */
  tight: boolean;
}

/**
 * WEBHOOK_HOST_RATE_PER_SECOND: delivery attempts per destination host (the URL's host name, whatever its port or
 * path), in fixed one-second windows counted in Redis or Postgres (WebhookHostAttempts), so every worker shares one
 * count. At 100 a second and more, a process counts a few slots at a time and hands them out itself (one count per
 * fiftieth of the rate instead of one per attempt). While that count cannot be reached each process counts alone,
 * rather than stopping deliveries or letting everything through.
 */
@Injectable()
export class WebhookHostLimit {
  private readonly logger = new Logger('WebhookHostLimit');
  private readonly perSecond: number;
  private readonly inProcess?: RateLimiterMemory;
  private readonly slotsPerTake: number;
  private readonly held = new Map<string, HeldSlots>();
  /** The one count of several slots under way per host (the attempts that arrive meanwhile wait for its slots). */
  private readonly taking = new Map<string, Promise<unknown>>();

  constructor(
    config: AppConfig,
    private readonly attempts: WebhookHostAttempts,
  ) {
    this.perSecond = config.webhook.hostRatePerSecond;
    this.slotsPerTake = Math.floor(this.perSecond * SLOTS_PER_TAKE);
    if (this.perSecond > 0) {
      this.inProcess = new RateLimiterMemory({ points: this.perSecond, duration: HOST_WINDOW_MS / 1000 });
    }
  }

  /**
   * Takes a slot for one attempt to `url` now: 0 when it may go, else how long to wait (ms). The wait aims at the
   * window that has room for this attempt given how far over the current one is, at a random point in it, so
   * deliveries held back together do not all come back at the same instant.
   */
  async take(url: string): Promise<number> {
    if (!this.inProcess) return 0;
    const host = new URL(url).hostname.toLowerCase();
    if (this.slotsPerTake > 1) {
      if (this.useHeld(host)) return 0;
      const taking = this.taking.get(host);
      if (taking) {
        await taking;
        if (this.useHeld(host)) return 0;
      } else if (!this.held.get(host)?.tight || this.held.get(host)!.windowEnd <= Date.now()) {
        return this.takeSlots(host);
      }
    }
    return this.waitOf(await this.count(host, 1));
  }

  /** One of this process's held slots for `host`, if it holds one in the current window. */
  private useHeld(host: string): boolean {
    const held = this.held.get(host);
    if (!held || held.left < 1 || held.windowEnd <= Date.now()) return false;
    held.left--;
    // The next slots are counted while some are still held: the attempts meanwhile use those and do not wait.
    if (held.left < this.slotsPerTake * REFILL_BELOW && !held.tight && !this.taking.has(host)) {
      void this.countSlots(host);
    }
    return true;
  }

  /**
   * Counts a take of slots for `host` and holds those granted; the attempts that arrive meanwhile wait for this one
   * count (`taking`) rather than each making their own. Answers the window as counted.
   */
  private countSlots(host: string): Promise<HostWindow> {
    const count = this.slotsPerTake;
    const counted = this.count(host, count)
      .then((window) => {
        this.hold(host, window, count);
        return window;
      })
      .finally(() => this.taking.delete(host));
    this.taking.set(host, counted);
    return counted;
  }

  /**
   * The slots a count of `count` got: those under the limit are ours (the count went past it by the rest, which
   * nobody uses), added to those still held when the count fell in the same window (its end known to within the
   * round trip).
   */
  private hold(host: string, window: HostWindow, count: number): void {
    const granted = Math.max(0, Math.min(count, this.perSecond - (window.attempts - count)));
    const windowEnd = Date.now() + window.msBeforeNext;
    const held = this.held.get(host);
    const left = held && Math.abs(held.windowEnd - windowEnd) < HOST_WINDOW_MS / 2 ? held.left : 0;
    this.held.set(host, { windowEnd, left: left + granted, tight: granted < count });
  }

  /** Counts several slots at once: one for this attempt, the rest held for the next ones. */
  private async takeSlots(host: string): Promise<number> {
    const window = await this.countSlots(host);
    if (this.useHeld(host)) return 0;
    // Over the limit: this attempt's place is the first of those counted.
    return this.waitOf({ attempts: window.attempts - this.slotsPerTake + 1, msBeforeNext: window.msBeforeNext });
  }

  /** How long an attempt counted at `window` waits: none under the limit. */
  private waitOf(window: HostWindow): number {
    if (window.attempts <= this.perSecond) return 0;
    const windowsAhead = Math.floor(Math.max(0, window.attempts - this.perSecond - 1) / this.perSecond);
    return window.msBeforeNext + windowsAhead * HOST_WINDOW_MS + Math.floor(Math.random() * HOST_WINDOW_MS);
  }

  private async count(host: string, count: number): Promise<HostWindow> {
    try {
      return await this.attempts.add(host, count);
    } catch (err) {
      this.logger.debug(`host rate counted in this process only: ${(err as Error).message}`);
      return this.countInProcess(host, count);
    }
  }

  private async countInProcess(host: string, count: number): Promise<HostWindow> {
    let res: RateLimiterRes;
    try {
      res = await this.inProcess!.consume(host, count);
    } catch (err) {
      res = err as RateLimiterRes;
    }
    return { attempts: res.consumedPoints, msBeforeNext: res.msBeforeNext };
  }
}
