import { Injectable } from '@nestjs/common';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../queue/redis.service';
import { HOST_WINDOW_MS, HostWindow, WebhookHostAttempts } from './webhook-host-attempts';

/** Counted by rate-limiter-flexible under `<prefix>:webhook-host-rate:<host>`. */
@Injectable()
export class RedisWebhookHostAttempts extends WebhookHostAttempts {
  private readonly limiter: RateLimiterRedis;

  constructor(config: AppConfig, redis: RedisService) {
    super();
    this.limiter = new RateLimiterRedis({
      storeClient: redis.client,
      keyPrefix: redis.key('webhook-host-rate'),
      points: Math.max(1, config.webhook.hostRatePerSecond),
      duration: HOST_WINDOW_MS / 1000,
      rejectIfRedisNotReady: true,
    });
  }

  async add(host: string, count = 1): Promise<HostWindow> {
    let res: RateLimiterRes;
    try {
      res = await this.limiter.consume(host, count);
    } catch (err) {
      // Over the limit is an answer (the count goes on); anything else is Redis failing.
      if (!(err instanceof RateLimiterRes)) throw err;
      res = err;
    }
    return { attempts: res.consumedPoints, msBeforeNext: res.msBeforeNext };
  }
}
