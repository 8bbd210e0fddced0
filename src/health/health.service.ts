import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
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

/** What the public answer says of each dependency: up or down, never the error (it can carry internal addresses). */
export type DependencyChecks = Record<string, { status: 'up' | 'down' }>;

export interface HealthReport {
  status: 'healthy' | 'unhealthy' | 'shutting_down';
  role: string;
  uptime_s: number;
  checks: DependencyChecks;
  queue?: QueueSummary;
}

/** Queue counts are several queries: one process reads them at most this often, however often it is asked. */
const QUEUE_SUMMARY_TTL_MS = 1000;

@Injectable()
export class HealthService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Health');
  private shuttingDown = false;
  private summary?: { at: number; value: Promise<QueueSummary> };

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

  /** Every dependency answers (Postgres, and Redis when the queues live there); `queue` added when they do. */
  async report(withQueue: boolean): Promise<HealthReport> {
    const result = await this.dependencies();
    const healthy = result.status === 'ok';
    const report: HealthReport = {
      status: this.shuttingDown ? 'shutting_down' : healthy ? 'healthy' : 'unhealthy',
      role: this.config.role,
      uptime_s: Math.round(process.uptime()),
      checks: this.publicChecks(result.details),
    };
    if (healthy && withQueue) report.queue = await this.queueSummary();
    return report;
  }

  private async dependencies(): Promise<HealthCheckResult> {
    try {
      return await this.health.check(this.deps.checks());
    } catch (err) {
      // terminus throws a ServiceUnavailableException carrying the result when a check is down.
      const response = (err as { getResponse?: () => unknown }).getResponse?.();
      if (response && typeof response === 'object' && 'details' in response) return response as HealthCheckResult;
      throw err;
    }
  }

  /** Each dependency's status; the reason a dependency is down goes to the log only. */
  private publicChecks(details: HealthCheckResult['details']): DependencyChecks {
    const checks: DependencyChecks = {};
    for (const [name, detail] of Object.entries(details)) {
      const up = detail.status === 'up';
      if (!up) this.logger.warn(`${name} is down: ${String(detail.message ?? 'no answer')}`);
      checks[name] = { status: up ? 'up' : 'down' };
    }
    return checks;
  }

  /**
   * The task queue's counts, read at most once a second (calls in between share the last read, or the one under
   * way); a failed read is not kept.
   */
  queueSummary(): Promise<QueueSummary> {
    const now = Date.now();
    if (this.summary && now - this.summary.at < QUEUE_SUMMARY_TTL_MS) return this.summary.value;
    const entry = { at: now, value: this.readQueueSummary() };
    entry.value.catch(() => {
      if (this.summary === entry) this.summary = undefined;
    });
    this.summary = entry;
    return entry.value;
  }

  /** Counts from the task queue; worker capacity assumes every worker runs WORKER_CONCURRENCY jobs at once. */
  private async readQueueSummary(): Promise<QueueSummary> {
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
