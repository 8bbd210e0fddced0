import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config';
import { QueueGateway } from '../queue/queue.gateway';
import { QueueName } from '../queue/queue.constants';
import { withTimeout } from '../queue/redis.service';
import { DependenciesHealth } from './dependencies.health';

export interface QueueSummary {
  queued: number;
  processing: number;
  completed: number;
  failed: number;
  delayed: number;
  activeWorkers: number;
  availableWorkers: number;
  workers: number;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy' | 'shutting_down';
  role: string;
  uptime_s: number;
  checks: HealthCheckResult['details'];
  queue?: QueueSummary;
}

@Injectable()
export class HealthService implements BeforeApplicationShutdown {
  private shuttingDown = false;

  constructor(
    private readonly health: HealthCheckService,
    private readonly deps: DependenciesHealth,
    private readonly queues: QueueGateway,
    private readonly config: AppConfig,
  ) {}

  /** From SIGTERM on, readiness fails so load balancers stop sending requests while work drains. */
  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
  }

  /** Postgres and Redis both answer; `queue` added when they do. */
  async report(withQueue: boolean): Promise<HealthReport> {
    const result = await this.dependencies();
    const healthy = result.status === 'ok';
    const report: HealthReport = {
      status: this.shuttingDown ? 'shutting_down' : healthy ? 'healthy' : 'unhealthy',
      role: this.config.role,
      uptime_s: Math.round(process.uptime()),
      checks: result.details,
    };
    if (healthy && withQueue) report.queue = await this.queueSummary();
    return report;
  }

  private async dependencies(): Promise<HealthCheckResult> {
    try {
      return await this.health.check([() => this.deps.postgres(), () => this.deps.redisCheck()]);
    } catch (err) {
      // terminus throws a ServiceUnavailableException carrying the result when a check is down.
      const response = (err as { getResponse?: () => unknown }).getResponse?.();
      if (response && typeof response === 'object' && 'details' in response) return response as HealthCheckResult;
      throw err;
    }
  }

  /** Counts from the task queue; worker capacity assumes every worker runs WORKER_CONCURRENCY jobs at once. */
  async queueSummary(): Promise<QueueSummary> {
    const queue = this.queues.queue(QueueName.Tasks);
    const [counts, workers] = await withTimeout(
      Promise.all([
        queue.getJobCounts('waiting', 'prioritized', 'active', 'completed', 'failed', 'delayed'),
        queue.getWorkersCount(),
      ]),
      2000,
      'queue counts timed out',
    );
    const capacity = workers * this.config.workerConcurrency;
    return {
      queued: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      processing: counts.active ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      delayed: counts.delayed ?? 0,
      activeWorkers: Math.min(counts.active ?? 0, capacity),
      availableWorkers: Math.max(0, capacity - (counts.active ?? 0)),
      workers,
    };
  }
}
