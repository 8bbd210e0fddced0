import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { QueueBackend } from '../queue/queue-backend';
import { RedisService } from '../queue/redis.service';

const CHECK_TIMEOUT_MS = 1000;

/** One indicator per dependency, each under its own timeout. */
@Injectable()
export class DependenciesHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly redis: RedisService,
    private readonly queueBackend: QueueBackend,
  ) {}

  /**
   * Every dependency of the process: Postgres, and Redis when the queues live there. On QUEUE_BACKEND=postgres the
   * queues are in the platform's own database, which the Postgres check already covers.
   */
  checks(): (() => Promise<HealthIndicatorResult>)[] {
    const checks = [() => this.postgres()];
    if (this.queueBackend.kind === 'redis') checks.push(() => this.redisCheck());
    return checks;
  }

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
