import { Injectable } from '@nestjs/common';
import {
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterStoreAbstract,
} from 'rate-limiter-flexible';
import { DataSource } from 'typeorm';
import { RedisService } from '../queue/redis.service';

/** Requests counted per key in fixed windows of this many seconds. */
const WINDOW_SECONDS = 60;

/**
 * Makes the request counters the rate limits use, shared by every API process: in Redis, or in the platform's
 * Postgres (`rate_limits`), as QUEUE_BACKEND says. While the store is away each process counts alone in memory (the
 * limit then holds per process) rather than refusing or letting everything through.
 */
export abstract class RateLimiters {
  /** A counter of `points` a minute per key; `name` keeps its keys apart from the other counters'. */
  abstract perMinute(name: string, points: number): RateLimiterStoreAbstract;
}

@Injectable()
export class RedisRateLimiters extends RateLimiters {
  constructor(private readonly redis: RedisService) {
    super();
  }

  perMinute(name: string, points: number): RateLimiterStoreAbstract {
    return new RateLimiterRedis({
      storeClient: this.redis.client,
      keyPrefix: name === 'user' ? this.redis.key('ratelimit') : this.redis.key('ratelimit', name),
      points,
      duration: WINDOW_SECONDS,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ points, duration: WINDOW_SECONDS }),
    });
  }
}

/**
 * Counters as rows of `rate_limits` (made by a migration, so the library is told not to create it), through
 * TypeORM's pool. The library deletes rows past their window once an hour.
 */
@Injectable()
export class PostgresRateLimiters extends RateLimiters {
  constructor(private readonly dataSource: DataSource) {
    super();
  }

  perMinute(name: string, points: number): RateLimiterStoreAbstract {
    return new RateLimiterPostgres({
      storeClient: this.dataSource,
      storeType: 'typeorm',
      tableName: 'rate_limits',
      tableCreated: true,
      keyPrefix: name,
      points,
      duration: WINDOW_SECONDS,
      insuranceLimiter: new RateLimiterMemory({ points, duration: WINDOW_SECONDS }),
    });
  }
}
