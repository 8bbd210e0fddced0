import { Injectable, Logger } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { HOST_WINDOW_MS, HostWindow, WebhookHostAttempts } from './webhook-host-attempts';

/**
 * WEBHOOK_HOST_RATE_PER_SECOND: delivery attempts per destination host (the URL's host name, whatever its port or
 * path), in fixed one-second windows counted in Redis or Postgres (WebhookHostAttempts), so every worker shares one
 * count. While that count cannot be reached each process counts alone, rather than stopping deliveries or letting
 * everything through.
 */
@Injectable()
export class WebhookHostLimit {
  private readonly logger = new Logger('WebhookHostLimit');
  private readonly perSecond: number;
  private readonly inProcess?: RateLimiterMemory;

  constructor(
    config: AppConfig,
    private readonly attempts: WebhookHostAttempts,
  ) {
    this.perSecond = config.webhook.hostRatePerSecond;
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
    let window: HostWindow;
    try {
      window = await this.attempts.add(host);
    } catch (err) {
      this.logger.debug(`host rate counted in this process only: ${(err as Error).message}`);
      window = await this.countInProcess(host);
    }
    if (window.attempts <= this.perSecond) return 0;
    const windowsAhead = Math.floor(Math.max(0, window.attempts - this.perSecond - 1) / this.perSecond);
    return window.msBeforeNext + windowsAhead * HOST_WINDOW_MS + Math.floor(Math.random() * HOST_WINDOW_MS);
  }

  private async countInProcess(host: string): Promise<HostWindow> {
    let res: RateLimiterRes;
    try {
      res = await this.inProcess!.consume(host);
    } catch (err) {
      res = err as RateLimiterRes;
    }
    return { attempts: res.consumedPoints, msBeforeNext: res.msBeforeNext };
  }
}
