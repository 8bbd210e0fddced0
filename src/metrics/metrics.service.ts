import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Subscription } from 'rxjs';
import { TaskEvent } from '../events/task-event';
import { TaskEventsService } from '../events/task-events.service';
import { QueueGateway } from '../queue/queue.gateway';
import { QueueBackend } from '../queue/queue-backend';
import { withTimeout } from '../queue/redis.service';
import { TaskEventType } from '../tasks/task.enums';
import type { DeliveryStatus } from '../webhooks/webhook-deliveries.repository';

/** Every metric name starts with this, the Node process metrics included. */
export const METRICS_PREFIX = 'media_';

/** The BullMQ states reported by `media_queue_jobs`. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'prioritized', 'waiting-children'] as const;

/** A scrape must not hang on a Redis outage: past this the queue gauge is left out of that scrape. */
const QUEUE_COUNTS_TIMEOUT_MS = 1000;

const TASK_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const PROVIDER_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Error codes are ours (ProviderErrorCode, TaskErrorCode), but a label must never carry free text. */
const LABEL_VALUE = /^[a-z][a-z0-9_]{0,39}$/;

/**
 * Prometheus metrics of this process, on a registry of its own (not prom-client's global one, so several apps in one
 * process — the tests — do not collide). Task counters and histograms follow the in-process event stream, so each
 * process counts the transitions it made (the API `task.created`, the workers the rest): scrape every process.
 * Labels stay bounded: task type, provider name, status, queue, error code — never ids or URLs.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnModuleDestroy {
  readonly registry = new Registry();
  private readonly logger = new Logger('Metrics');
  private subscription?: Subscription;

  private readonly tasksCreated = new Counter({
    name: `${METRICS_PREFIX}tasks_created_total`,
    help: 'Tasks submitted, by type, provider (none until one runs it) and status',
    labelNames: ['type', 'provider', 'status'] as const,
    registers: [this.registry],
  });
  private readonly tasksFinished = new Counter({
    name: `${METRICS_PREFIX}tasks_finished_total`,
    help: 'Tasks that reached completed, failed or cancelled, by type, provider and status',
    labelNames: ['type', 'provider', 'status'] as const,
    registers: [this.registry],
  });
  private readonly taskDuration = new Histogram({
    name: `${METRICS_PREFIX}task_duration_seconds`,
    help: 'Run time of finished tasks (started_at to completed_at of the last run), by type and status',
    labelNames: ['type', 'status'] as const,
    buckets: TASK_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWait = new Histogram({
    name: `${METRICS_PREFIX}task_queue_wait_seconds`,
    help: 'Time from submit to the first start of a task (created_at to started_at), by type',
    labelNames: ['type'] as const,
    buckets: TASK_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueJobs = new Gauge({
    name: `${METRICS_PREFIX}queue_jobs`,
    help: 'BullMQ jobs by queue and state, read at scrape time (absent when Redis does not answer in time)',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
    collect: () => this.collectQueueJobs(),
  });
  private readonly webhookDeliveries = new Counter({
    name: `${METRICS_PREFIX}webhook_deliveries_total`,
    help: 'Webhook delivery attempts by outcome: delivered, failed (a retry follows) or dead (dead-lettered)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly providerCallDuration = new Histogram({
    name: `${METRICS_PREFIX}provider_call_duration_seconds`,
    help: 'Latency of provider calls (start or poll), by provider and outcome (ok, error)',
    labelNames: ['provider', 'outcome'] as const,
    buckets: PROVIDER_SECONDS_BUCKETS,
    registers: [this.registry],
  });
  private readonly retentionFiles = new Counter({
    name: `${METRICS_PREFIX}retention_deleted_files_total`,
    help: 'Stored files deleted past OUTPUT_RETENTION_DAYS, by kind (task_output, upload)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly retentionBytes = new Counter({
    name: `${METRICS_PREFIX}retention_deleted_bytes_total`,
    help: 'Bytes of stored files deleted past OUTPUT_RETENTION_DAYS, by kind (task_output, upload)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly providerErrors = new Counter({
    name: `${METRICS_PREFIX}provider_errors_total`,
    help: 'Provider calls that failed with a classified error, by provider and error code',
    labelNames: ['provider', 'code'] as const,
    registers: [this.registry],
  });

  constructor(
    private readonly events: TaskEventsService,
    private readonly queues: QueueGateway,
    private readonly queueBackend: QueueBackend,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
  }

  onModuleInit(): void {
    this.subscription = this.events.events$.subscribe((event) => this.onTaskEvent(event));
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric of this process. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The status an attempt left its delivery in: delivered, failed (a retry follows) or dead. */
  countRetention(kind: 'task_output' | 'upload', files: number, bytes: number): void {
    this.retentionFiles.inc({ kind }, files);
    this.retentionBytes.inc({ kind }, bytes);
  }

  countWebhookDelivery(outcome: DeliveryStatus): void {
    this.webhookDeliveries.inc({ outcome });
  }

  observeProviderCall(provider: string, outcome: 'ok' | 'error', latencyMs: number): void {
    this.providerCallDuration.observe({ provider, outcome }, latencyMs / 1000);
  }

  countProviderError(provider: string, code: string): void {
    this.providerErrors.inc({ provider, code: LABEL_VALUE.test(code) ? code : 'other' });
  }

  /** A subscriber that throws would break the event stream for everyone: a metric is never worth that. */
  private onTaskEvent(event: TaskEvent): void {
    try {
      const { type, task } = event;
      // Counts are of what clients submitted; the parts of a split task show in the provider metrics.
      if (task.parentId) return;
      const labels = { type: task.type, provider: task.provider ?? 'none', status: task.status };
      switch (type) {
        case TaskEventType.Created:
          this.tasksCreated.inc(labels);
          return;
        case TaskEventType.Started: {
          // Only the first run: a retry's start would count the earlier runs and backoffs as waiting.
          const wait = task.attempts <= 1 ? secondsBetween(task.createdAt, task.startedAt) : undefined;
          if (wait !== undefined) this.queueWait.observe({ type: task.type }, wait);
          return;
        }
        case TaskEventType.Completed:
        case TaskEventType.Failed:
        case TaskEventType.Cancelled: {
          this.tasksFinished.inc(labels);
          const duration = secondsBetween(task.startedAt, task.completedAt);
          if (duration !== undefined) this.taskDuration.observe({ type: task.type, status: task.status }, duration);
          return;
        }
        case TaskEventType.Progress:
          return;
      }
    } catch (err) {
      this.logger.warn({ taskId: event?.taskId, event: event?.type }, `metrics not updated: ${(err as Error).message}`);
    }
  }

  private async collectQueueJobs(): Promise<void> {
    this.queueJobs.reset();
    if (!this.queueBackend.isAvailable) return;
    try {
      const counts = await withTimeout(
        Promise.all(
          this.queues.allQueues().map(async (queue) => ({
            queue: queue.name,
            counts: await queue.getJobCounts(...QUEUE_STATES),
          })),
        ),
        QUEUE_COUNTS_TIMEOUT_MS,
        'queue counts timed out',
      );
      for (const { queue, counts: byState } of counts) {
        for (const state of QUEUE_STATES) this.queueJobs.set({ queue, state }, byState[state] ?? 0);
      }
    } catch (err) {
      this.logger.warn(`queue depth left out of this scrape: ${(err as Error).message}`);
    }
  }
}

/** Seconds from `from` to `to`; undefined when either is missing or the clock went backwards. */
function secondsBetween(
  from: Date | string | null | undefined,
  to: Date | string | null | undefined,
): number | undefined {
  if (!from || !to) return undefined;
  const seconds = (new Date(to).getTime() - new Date(from).getTime()) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
