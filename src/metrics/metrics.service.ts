import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Subscription } from 'rxjs';
import { TaskEvent } from '../events/task-event';
import { TaskEventsService } from '../events/task-events.service';
import { ProviderHealthService } from '../providers/provider-health.service';
import { ProviderRegistry } from '../providers/provider.registry';
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
const WEBHOOK_OUTCOMES: DeliveryStatus[] = ['delivered', 'failed', 'dead'];
/** A webhook attempt is cut at WEBHOOK_TIMEOUT_MS (10 s by default, 120 s at most). */
const WEBHOOK_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

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
  /** The read of the queues in flight: a scrape collects every gauge at once, and both queue gauges come from it. */
  private queueRead?: Promise<void>;

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
    collect: () => this.readQueues(),
  });
  private readonly queueWorkers = new Gauge({
    name: `${METRICS_PREFIX}queue_workers`,
    help: 'Workers connected to each queue, across every process (read from the datastore at scrape time)',
    labelNames: ['queue'] as const,
    registers: [this.registry],
    collect: () => this.readQueues(),
  });
  private readonly webhookDeliveries = new Counter({
    name: `${METRICS_PREFIX}webhook_deliveries_total`,
    help: 'Webhook delivery attempts by outcome: delivered, failed (a retry follows) or dead (dead-lettered)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly webhookDeliveryDuration = new Histogram({
    name: `${METRICS_PREFIX}webhook_delivery_duration_seconds`,
    help: 'Time a webhook attempt took, from sending to the answer (or the timeout), by outcome',
    labelNames: ['outcome'] as const,
    buckets: WEBHOOK_SECONDS_BUCKETS,
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
  private readonly providerCircuitOpen = new Gauge({
    name: `${METRICS_PREFIX}provider_circuit_open`,
    help: 'Whether a provider is kept out by its open circuit (1) or not (0: closed, or half-open for a trial call)',
    labelNames: ['provider'] as const,
    registers: [this.registry],
    collect: () => this.collectCircuits(),
  });

  constructor(
    private readonly events: TaskEventsService,
    private readonly queues: QueueGateway,
    private readonly queueBackend: QueueBackend,
    private readonly providers: ProviderRegistry,
    private readonly health: ProviderHealthService,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
    // From 0, so the first dead letter is an increase Prometheus sees (a series born at 1 shows none).
    for (const outcome of WEBHOOK_OUTCOMES) this.webhookDeliveries.inc({ outcome }, 0);
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

  /** Stored files the retention sweep deleted, and their bytes. */
  countRetention(kind: 'task_output' | 'upload', files: number, bytes: number): void {
    this.retentionFiles.inc({ kind }, files);
    this.retentionBytes.inc({ kind }, bytes);
  }

  /** The status an attempt left its delivery in, and how long the request took (none when nothing was sent). */
  countWebhookDelivery(outcome: DeliveryStatus, durationMs?: number): void {
    this.webhookDeliveries.inc({ outcome });
    if (durationMs !== undefined) this.webhookDeliveryDuration.observe({ outcome }, durationMs / 1000);
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

  private readQueues(): Promise<void> {
    this.queueRead ??= this.collectQueues().finally(() => (this.queueRead = undefined));
    return this.queueRead;
  }

  /** Job counts and connected workers of every queue, in one timed read (both gauges are left out together). */
  private async collectQueues(): Promise<void> {
    this.queueJobs.reset();
    this.queueWorkers.reset();
    if (!this.queueBackend.isAvailable) return;
    try {
      const counts = await withTimeout(
        Promise.all(
          this.queues.allQueues().map(async (queue) => ({
            queue: queue.name,
            counts: await queue.getJobCounts(...QUEUE_STATES),
            // Every process reports the same count: an alert on "no worker" must not need the worker's own scrape.
            workers: await queue.getWorkersCount(),
          })),
        ),
        QUEUE_COUNTS_TIMEOUT_MS,
        'queue counts timed out',
      );
      for (const { queue, counts: byState, workers } of counts) {
        for (const state of QUEUE_STATES) this.queueJobs.set({ queue, state }, byState[state] ?? 0);
        this.queueWorkers.set({ queue }, workers);
      }
    } catch (err) {
      this.logger.warn(`queue depth left out of this scrape: ${(err as Error).message}`);
    }
  }

  /** The circuits are shared by every process (Redis or Postgres): each scrape reads them as routing would. */
  private async collectCircuits(): Promise<void> {
    this.providerCircuitOpen.reset();
    const names = this.providers.list().map((p) => p.name);
    try {
      const health = await withTimeout(this.health.snapshots(names), QUEUE_COUNTS_TIMEOUT_MS, 'circuits timed out');
      names.forEach((provider, i) => this.providerCircuitOpen.set({ provider }, health[i].circuit === 'open' ? 1 : 0));
    } catch (err) {
      this.logger.warn(`provider circuits left out of this scrape: ${(err as Error).message}`);
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
