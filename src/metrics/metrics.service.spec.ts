import { Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Subject } from 'rxjs';
import { TaskEvent } from '../events/task-event';
import { TaskEventsService } from '../events/task-events.service';
import { CircuitState, ProviderHealth, ProviderHealthService } from '../providers/provider-health.service';
import { MediaProvider } from '../providers/provider.port';
import { ProviderRegistry } from '../providers/provider.registry';
import { QueueGateway } from '../queue/queue.gateway';
import { QueueBackend } from '../queue/queue-backend';
import { TaskEntity } from '../tasks/entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';
import { MetricsService } from './metrics.service';

function fakeQueue(name: string, getJobCounts: () => Promise<Record<string, number>>, workers = 0): Queue {
  return { name, getJobCounts, getWorkersCount: () => Promise.resolve(workers) } as unknown as Queue;
}

/** Providers by name with the circuit the shared health answers for each. */
function fakeProviders(circuits: Record<string, CircuitState>): [ProviderRegistry, ProviderHealthService] {
  const registry = { list: () => Object.keys(circuits).map((name) => ({ name }) as MediaProvider) };
  const health = {
    snapshots: (names: string[]) =>
      Promise.resolve(names.map((name) => ({ circuit: circuits[name] }) as ProviderHealth)),
  };
  return [registry as unknown as ProviderRegistry, health as unknown as ProviderHealthService];
}

function metricsWith(
  queues: Queue[],
  ready = true,
  providers = fakeProviders({}),
): { metrics: MetricsService; events: Subject<TaskEvent> } {
  const events = new Subject<TaskEvent>();
  const metrics = new MetricsService(
    { events$: events.asObservable() } as unknown as TaskEventsService,
    { allQueues: () => queues } as unknown as QueueGateway,
    { isAvailable: ready } as unknown as QueueBackend,
    ...providers,
  );
  metrics.onModuleInit();
  return { metrics, events };
}

function event(type: TaskEventType, patch: Partial<TaskEntity>): TaskEvent {
  const task = TaskEntity.create({
    id: 'f0e1d2c3-0000-4000-8000-000000000000',
    userId: 'u',
    type: TaskType.Caption,
    input: {},
    ...patch,
  });
  return { type, taskId: task.id, userId: 'u', sequence: 1, timestamp: new Date(), task };
}

describe('MetricsService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('leaves the queue gauge out of a scrape when Redis does not answer in time, without hanging it', async () => {
    const { metrics } = metricsWith([fakeQueue('tasks', () => new Promise(() => undefined))]);
    const started = Date.now();
    const text = await metrics.render();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(text).toContain('# TYPE media_queue_jobs gauge');
    expect(text).not.toContain('media_queue_jobs{');
    expect(text).toContain('media_process_cpu_user_seconds_total');
  });

  it('skips the queue counts while Redis is not connected, and reads them when it is', async () => {
    const counts = jest.fn(() => Promise.resolve({ waiting: 2, active: 1, delayed: 0, failed: 3, prioritized: 4 }));
    expect(await metricsWith([fakeQueue('tasks', counts)], false).metrics.render()).not.toContain('media_queue_jobs{');
    expect(counts).not.toHaveBeenCalled();

    const text = await metricsWith([fakeQueue('tasks', counts, 2)]).metrics.render();
    expect(counts).toHaveBeenCalledWith('waiting', 'active', 'delayed', 'failed', 'prioritized', 'waiting-children');
    expect(text).toContain('media_queue_workers{queue="tasks"} 2');
    expect(text).toContain('media_queue_jobs{queue="tasks",state="waiting"} 2');
    expect(text).toContain('media_queue_jobs{queue="tasks",state="failed"} 3');
    expect(text).toContain('media_queue_jobs{queue="tasks",state="prioritized"} 4');
  });

  it('reports each provider circuit: 1 while open, 0 when closed or half-open', async () => {
    const providers = fakeProviders({ runway: 'open', openai: 'closed', fal: 'half_open' });
    const text = await metricsWith([], true, providers).metrics.render();
    expect(text).toContain('media_provider_circuit_open{provider="runway"} 1');
    expect(text).toContain('media_provider_circuit_open{provider="openai"} 0');
    expect(text).toContain('media_provider_circuit_open{provider="fal"} 0');
  });

  it('leaves the circuits out of a scrape when the shared health does not answer, without failing it', async () => {
    const [registry] = fakeProviders({ runway: 'open' });
    const health = { snapshots: () => Promise.reject(new Error('redis away')) } as unknown as ProviderHealthService;
    const text = await metricsWith([], true, [registry, health]).metrics.render();
    expect(text).toContain('# TYPE media_provider_circuit_open gauge');
    expect(text).not.toContain('media_provider_circuit_open{');
  });

  it('times webhook attempts that were sent, and only counts those that were not', async () => {
    const { metrics } = metricsWith([]);
    metrics.countWebhookDelivery('delivered', 1500);
    metrics.countWebhookDelivery('dead');
    const text = await metrics.render();
    expect(text).toContain('media_webhook_deliveries_total{outcome="delivered"} 1');
    expect(text).toContain('media_webhook_deliveries_total{outcome="dead"} 1');
    expect(text).toContain('media_webhook_delivery_duration_seconds_sum{outcome="delivered"} 1.5');
    expect(text).toContain('media_webhook_delivery_duration_seconds_bucket{le="2.5",outcome="delivered"} 1');
    expect(text).toContain('media_webhook_delivery_duration_seconds_bucket{le="1",outcome="delivered"} 0');
    expect(text).not.toMatch(/media_webhook_delivery_duration_seconds_count\{outcome="dead"/);
  });

  it('measures duration and queue wait from the row, and survives a malformed event', async () => {
    const { metrics, events } = metricsWith([]);
    const createdAt = new Date('2026-01-01T00:00:00Z');
    const startedAt = new Date('2026-01-01T00:00:03Z');
    const completedAt = new Date('2026-01-01T00:00:10Z');
    events.next(event(TaskEventType.Started, { status: TaskStatus.Processing, attempts: 1, createdAt, startedAt }));
    events.next(event(TaskEventType.Started, { status: TaskStatus.Processing, attempts: 2, createdAt, startedAt }));
    events.next(
      event(TaskEventType.Completed, {
        status: TaskStatus.Completed,
        provider: 'p1',
        createdAt,
        startedAt,
        completedAt,
      }),
    );
    events.next({ type: TaskEventType.Created } as unknown as TaskEvent); // no task: logged, not thrown
    events.next(event(TaskEventType.Cancelled, { status: TaskStatus.Cancelled, startedAt: null, completedAt }));
    metrics.countProviderError('p1', 'Free text with spaces');
    const text = await metrics.render();
    expect(text).toContain('media_task_queue_wait_seconds_sum{type="caption"} 3');
    expect(text).toContain('media_task_queue_wait_seconds_count{type="caption"} 1');
    expect(text).toContain('media_task_duration_seconds_sum{type="caption",status="completed"} 7');
    expect(text).toContain('media_tasks_finished_total{type="caption",provider="p1",status="completed"} 1');
    expect(text).toContain('media_tasks_finished_total{type="caption",provider="none",status="cancelled"} 1');
    expect(text).not.toContain('status="cancelled"} 0');
    expect(text).not.toMatch(/media_task_duration_seconds_count\{[^}]*cancelled/);
    expect(text).toContain('media_provider_errors_total{provider="p1",code="other"} 1');
  });
});
