import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';
import type { TasksRepository } from '../tasks/tasks.repository';
import { BackendFixture, BACKENDS, BackendName } from '../../test/support/backend-fixture';
import { waitUntil } from '../../test/support/wait';
import { toEventPayload, type TaskEventPayload } from './event-payload';
import { notificationOf, PostgresTaskEventBroadcast, PostgresTaskEventSubscriptions } from './postgres-task-events';
import { RedisTaskEventBroadcast, RedisTaskEventSubscriptions } from './redis-task-events';
import type { TaskEvent } from './task-event';
import type { TaskEventBroadcast } from './task-event-broadcast';
import type { TaskEventSubscriptions } from './task-event-subscriptions';

/** Rows the Postgres listener reads back when an event was too large to send whole. */
const rows = new Map<string, TaskEntity>();
const tasks = { findById: async (id: string) => rows.get(id) ?? null } as unknown as TasksRepository;

let taskCount = 0;
function taskOf(overrides: Partial<TaskEntity> = {}): TaskEntity {
  taskCount += 1;
  return {
    id: `6d1f3c1e-8a53-4c44-9d2e-${String(taskCount).padStart(12, '0')}`,
    userId: 'alice',
    type: TaskType.SubtitleGeneration,
    status: TaskStatus.Processing,
    progress: 0,
    output: null,
    error: null,
    metadata: null,
    eventSeq: 2,
    ...overrides,
  } as unknown as TaskEntity;
}

function eventOf(task: TaskEntity, type = TaskEventType.Started, sequence = task.eventSeq): TaskEvent {
  return { type, taskId: task.id, userId: task.userId, sequence, timestamp: new Date(), task };
}

describe.each(BACKENDS)('the task event channel on %s', (backend: BackendName) => {
  let fixture: BackendFixture;
  let sender: TaskEventBroadcast;
  let listener: TaskEventSubscriptions;
  let other: TaskEventSubscriptions;

  const subscriptionsOf = (p: Awaited<ReturnType<BackendFixture['process']>>): TaskEventSubscriptions =>
    backend === 'postgres'
      ? new PostgresTaskEventSubscriptions(p.notifications, tasks)
      : new RedisTaskEventSubscriptions(p.redis);

  beforeAll(async () => {
    fixture = await BackendFixture.start();
    const worker = await fixture.process();
    sender =
      backend === 'postgres'
        ? new PostgresTaskEventBroadcast(worker.notifications)
        : new RedisTaskEventBroadcast(worker.redis);
    listener = subscriptionsOf(await fixture.process());
    other = subscriptionsOf(await fixture.process());
  });
  afterAll(async () => {
    listener?.onModuleDestroy();
    other?.onModuleDestroy();
    await fixture?.close();
  });

  it("delivers, to another process's listeners of the task only, every event sent once the subscription resolved", async () => {
    const task = taskOf();
    const elsewhere = taskOf();
    const heard: TaskEventPayload[] = [];
    const heardElsewhere: TaskEventPayload[] = [];
    const unsubscribe = await listener.subscribe(task.id, (p) => heard.push(p));
    const unsubscribeOther = await other.subscribe(elsewhere.id, (p) => heardElsewhere.push(p));
    expect(listener.count(task.id)).toBe(1);

    const event = eventOf(task);
    await sender.send(event);
    await waitUntil('the event to arrive', () => heard.length === 1);
    expect(heard).toEqual([JSON.parse(JSON.stringify(toEventPayload(event)))]);
    expect(heardElsewhere).toEqual([]);

    unsubscribe();
    unsubscribeOther();
    expect(listener.count(task.id)).toBe(0);
  });

  it('keeps the order a process sent them in, across many events', async () => {
    const task = taskOf();
    const heard: number[] = [];
    const unsubscribe = await listener.subscribe(task.id, (p) => heard.push(p.sequence));
    const sequences = Array.from({ length: 200 }, (_, i) => i + 1);
    await Promise.all(sequences.map((s) => sender.send(eventOf(task, TaskEventType.Progress, s))));
    await waitUntil('every event to arrive', () => heard.length === sequences.length);
    expect(heard).toEqual(sequences);
    unsubscribe();
  });

  it('delivers an event whose payload is larger than a notification can carry, equal to the one sent', async () => {
    const task = taskOf({ status: TaskStatus.Completed, output: { content: 'x'.repeat(20_000) }, eventSeq: 5 });
    rows.set(task.id, task);
    const event = eventOf(task, TaskEventType.Completed);
    if (backend === 'postgres') expect(notificationOf(event).length).toBeLessThan(8000);
    const heard: TaskEventPayload[] = [];
    const unsubscribe = await listener.subscribe(task.id, (p) => heard.push(p));
    await sender.send(event);
    await waitUntil('the large event to arrive', () => heard.length === 1);
    expect(heard[0]).toEqual(JSON.parse(JSON.stringify(toEventPayload(event))));
    unsubscribe();
  });

  it('stops delivering once the last listener of the task has gone', async () => {
    const task = taskOf();
    const first: number[] = [];
    const second: number[] = [];
    const unsubscribeFirst = await listener.subscribe(task.id, (p) => first.push(p.sequence));
    const unsubscribeSecond = await listener.subscribe(task.id, (p) => second.push(p.sequence));
    expect(listener.count(task.id)).toBe(2);
    unsubscribeFirst();
    unsubscribeFirst();
    expect(listener.count(task.id)).toBe(1);
    await sender.send(eventOf(task, TaskEventType.Progress, 3));
    await waitUntil('the survivor to hear it', () => second.length === 1);
    unsubscribeSecond();
    await sender.send(eventOf(task, TaskEventType.Progress, 4));
    // A later subscriber of the same task sees the next event, and only it: nothing was left queued for the others.
    const later: number[] = [];
    const unsubscribeLater = await listener.subscribe(task.id, (p) => later.push(p.sequence));
    await sender.send(eventOf(task, TaskEventType.Progress, 5));
    await waitUntil('the later subscriber to hear it', () => later.length === 1);
    expect(later).toEqual([5]);
    expect(first).toEqual([]);
    expect(second).toEqual([3]);
    unsubscribeLater();
  });
});
