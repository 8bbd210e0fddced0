import { Injectable, Logger } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../queue/redis.service';

const WINDOW_MS = 1000;

/**
 * WEBHOOK_HOST_RATE_PER_SECOND: delivery attempts per destination host (the URL's host name, whatever its port or
 * path), in fixed one-second windows counted in Redis, so every worker shares one count. While Redis is away each
 * process counts alone, rather than stopping deliveries or letting everything through.
 */
@Injectable()
export class WebhookHostLimit {
  private readonly logger = new Logger('WebhookHostLimit');
  private readonly limiter?: RateLimiterRedis;
  private readonly perSecond: number;

  constructor(config: AppConfig, redis: RedisService) {
    this.perSecond = config.webhook.hostRatePerSecond;
    if (this.perSecond > 0) {
      this.limiter = new RateLimiterRedis({
        storeClient: redis.client,
        keyPrefix: redis.key('webhook-host-rate'),
        points: this.perSecond,
        duration: WINDOW_MS / 1000,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ points: this.perSecond, duration: WINDOW_MS / 1000 }),
      });
    }
  }

  /**
   * Takes a slot for one attempt to `url` now: 0 when it may go, else how long to wait (ms). The wait aims at the
   * window that has room for this attempt given how far over the current one is, at a random point in it, so
   * deliveries held back together do not all come back at the same instant.
   */
  async take(url: string): Promise<number> {
    if (!this.limiter) return 0;
    try {
      await this.limiter.consume(new URL(url).hostname.toLowerCase());
      return 0;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.logger.warn(`host rate not counted: ${(err as Error).message}`);
        return 0;
      }
      const windowsAhead = Math.floor(Math.max(0, err.consumedPoints - this.perSecond - 1) / this.perSecond);
      return err.msBeforeNext + windowsAhead * WINDOW_MS + Math.floor(Math.random() * WINDOW_MS);
    }
  }
}
