import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { RedisService } from '../queue/redis.service';

const CHECK_TIMEOUT_MS = 1000;

/** One indicator per dependency, each under its own timeout. */
@Injectable()
export class DependenciesHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly redis: RedisService,
  ) {}

  postgres(): Promise<HealthIndicatorResult> {
    return this.typeorm.pingCheck('postgres', { timeout: CHECK_TIMEOUT_MS });
  }

  async redisCheck(): Promise<HealthIndicatorResult> {
    const check = this.indicators.check('redis');
    try {
      await this.redis.ping(CHECK_TIMEOUT_MS);
      return check.up();
    } catch (err) {
      return check.down({ message: (err as Error).message });
    }
  }
}
