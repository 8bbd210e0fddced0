import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';
import type { TasksRepository } from '../tasks/tasks.repository';
import { BackendFixture, BACKENDS, BackendName } from '../../test/support/backend-fixture';
import { waitUntil } from '../../test/support/wait';
import { toEventPayload, type TaskEventPayload } from './event-payload';
import {
  notificationOf,
  POSTGRES_ALL_EVENTS_CHANNEL,
  postgresOwnerEventsChannel,
  postgresTaskEventsChannel,
  PostgresTaskEventBroadcast,
  PostgresTaskEventSubscriptions,
} from './postgres-task-events';
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
  let worker: Awaited<ReturnType<BackendFixture['process']>>;

  const subscriptionsOf = (p: Awaited<ReturnType<BackendFixture['process']>>): TaskEventSubscriptions =>
    backend === 'postgres'
      ? new PostgresTaskEventSubscriptions(p.notifications, tasks)
      : new RedisTaskEventSubscriptions(p.redis);

  beforeAll(async () => {
    fixture = await BackendFixture.start();
    worker = await fixture.process();
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
    const unsubscribe = await listener.subscribe({ task: task.id }, (p) => heard.push(p));
    const unsubscribeOther = await other.subscribe({ task: elsewhere.id }, (p) => heardElsewhere.push(p));
    expect(listener.count({ task: task.id })).toBe(1);

    const event = eventOf(task);
    await sender.send(event);
    await waitUntil('the event to arrive', () => heard.length === 1);
    expect(heard).toEqual([JSON.parse(JSON.stringify(toEventPayload(event)))]);
    expect(heardElsewhere).toEqual([]);

    unsubscribe();
    unsubscribeOther();
    expect(listener.count({ task: task.id })).toBe(0);
  });

  it('keeps the order a process sent them in, across many events', async () => {
    const task = taskOf();
    const heard: number[] = [];
    const unsubscribe = await listener.subscribe({ task: task.id }, (p) => heard.push(p.sequence));
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
    const unsubscribe = await listener.subscribe({ task: task.id }, (p) => heard.push(p));
    await sender.send(event);
    await waitUntil('the large event to arrive', () => heard.length === 1);
    expect(heard[0]).toEqual(JSON.parse(JSON.stringify(toEventPayload(event))));
    unsubscribe();
  });

  it('stops delivering once the last listener of the task has gone', async () => {
    const task = taskOf();
    const first: number[] = [];
    const second: number[] = [];
    const unsubscribeFirst = await listener.subscribe({ task: task.id }, (p) => first.push(p.sequence));
    const unsubscribeSecond = await listener.subscribe({ task: task.id }, (p) => second.push(p.sequence));
    expect(listener.count({ task: task.id })).toBe(2);
    unsubscribeFirst();
    unsubscribeFirst();
    expect(listener.count({ task: task.id })).toBe(1);
    await sender.send(eventOf(task, TaskEventType.Progress, 3));
    await waitUntil('the survivor to hear it', () => second.length === 1);
    unsubscribeSecond();
    await sender.send(eventOf(task, TaskEventType.Progress, 4));
    // A later subscriber of the same task sees the next event, and only it: nothing was left queued for the others.
    const later: number[] = [];
    const unsubscribeLater = await listener.subscribe({ task: task.id }, (p) => later.push(p.sequence));
    await sender.send(eventOf(task, TaskEventType.Progress, 5));
    await waitUntil('the later subscriber to hear it', () => later.includes(5));
    // Event 4 went out with nobody listening. Unsubscribing is asynchronous (queued behind earlier subscriptions, so a
    // later SUBSCRIBE wins), so it may still reach the channel's next listener; streams drop what is not newer than
    // what they sent. Nothing else is held for it.
    expect(later.filter((sequence) => sequence !== 4)).toEqual([5]);
    expect(first).toEqual([]);
    expect(second).toEqual([3]);
    unsubscribeLater();
  });

  it("delivers an owner's every event, creation included, to the owner's listeners, and everyone's to the all-tasks feed", async () => {
    const mine = taskOf({ userId: 'carol' });
    const theirs = taskOf({ userId: 'dave' });
    const large = taskOf({
      userId: 'carol',
      status: TaskStatus.Completed,
      output: { content: 'y'.repeat(20_000) },
      eventSeq: 3,
    });
    rows.set(large.id, large);
    const carol: TaskEventPayload[] = [];
    const dave: TaskEventPayload[] = [];
    const all: TaskEventPayload[] = [];
    const unsubscribes = [
      await listener.subscribe({ owner: 'carol' }, (p) => carol.push(p)),
      await other.subscribe({ owner: 'dave' }, (p) => dave.push(p)),
      await other.subscribe({ all: true }, (p) => all.push(p)),
    ];
    expect(listener.count({ owner: 'carol' })).toBe(1);
    expect(other.count({ all: true })).toBe(1);

    const events = [
      eventOf(mine, TaskEventType.Created, 1),
      eventOf(theirs, TaskEventType.Created, 1),
      eventOf(mine, TaskEventType.Started, 2),
      eventOf(large, TaskEventType.Completed),
    ];
    for (const event of events) await sender.send(event);
    await waitUntil('every event to arrive', () => carol.length === 3 && dave.length === 1 && all.length === 4);
    const expected = (list: TaskEvent[]) => list.map((e) => JSON.parse(JSON.stringify(toEventPayload(e))));
    expect(carol).toEqual(expected([events[0], events[2], events[3]]));
    expect(dave).toEqual(expected([events[1]]));
    expect(all).toEqual(expected(events));

    for (const unsubscribe of unsubscribes) unsubscribe();
    expect(listener.count({ owner: 'carol' })).toBe(0);
    expect(other.count({ all: true })).toBe(0);
  });

  it('sends a task channel nothing of a creation (nobody can listen for it there)', async () => {
    const task = taskOf({ userId: 'erin' });
    const onTask: number[] = [];
    const onOwner: number[] = [];
    const unsubscribeTask = await listener.subscribe({ task: task.id }, (p) => onTask.push(p.sequence));
    const unsubscribeOwner = await listener.subscribe({ owner: 'erin' }, (p) => onOwner.push(p.sequence));
    await sender.send(eventOf(task, TaskEventType.Created, 1));
    await sender.send(eventOf(task, TaskEventType.Started, 2));
    await waitUntil('both events on the owner channel', () => onOwner.length === 2);
    await waitUntil('the started event on the task channel', () => onTask.length === 1);
    expect(onTask).toEqual([2]);
    unsubscribeTask();
    unsubscribeOwner();
  });

  it("sends an event's channels in one round trip", async () => {
    const task = taskOf({ userId: 'frank' });
    const roundTrip =
      backend === 'postgres' ? jest.spyOn(worker.sql, 'rows') : jest.spyOn(worker.redis.client, 'pipeline');
    const lonePublish = jest.spyOn(worker.redis.client, 'publish');
    try {
      await sender.send(eventOf(task));
      expect(roundTrip).toHaveBeenCalledTimes(1);
      expect(lonePublish).not.toHaveBeenCalled();
      if (backend === 'postgres') {
        const [channels] = (roundTrip as jest.SpyInstance).mock.calls[0][1] as string[][];
        expect(channels).toEqual([
          postgresTaskEventsChannel(task.id),
          postgresOwnerEventsChannel('frank'),
          POSTGRES_ALL_EVENTS_CHANNEL,
        ]);
      }
    } finally {
      roundTrip.mockRestore();
      lonePublish.mockRestore();
    }
  });
});
