import { Logger } from '@nestjs/common';
import type { RedisService } from '../queue/redis.service';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';
import { toEventPayload } from './event-payload';
import { RedisTaskEventBroadcast } from './redis-task-events';
import type { TaskEvent } from './task-event';
import { TaskEventsService } from './task-events.service';
import { ownerKey } from './task-events.channel';

/**
 * A Redis whose pipelines and lone commands both PUBLISH through `publish`, one call per message; a clustered one
 * records the keys its pipelines name (EXISTS) in `keys`, which is what ioredis routes a pipeline by.
 */
function fakeRedis(publish: jest.Mock, clustered = false, keys: string[] = [], pipelines: number[] = []): RedisService {
  const pipeline = () => {
    pipelines.push(0);
    const queued: Promise<unknown>[] = [];
    const chain = {
      exists: (key: string) => {
        keys.push(key);
        queued.push(Promise.resolve(0));
        return chain;
      },
      publish: (channel: string, message: string) => {
        queued.push(Promise.resolve(publish(channel, message)));
        return chain;
      },
      get length() {
        return queued.length;
      },
      exec: () =>
        (pipelines[pipelines.length - 1] = queued.length) &&
        Promise.all(queued.map((p) => p.then((reply) => [null, reply] as const).catch((err: Error) => [err, null]))),
    };
    return chain;
  };
  return {
    client: { publish, pipeline },
    clustered,
    key: (...parts: string[]) => ['pfx', ...parts].join(':'),
  } as unknown as RedisService;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

const task = {
  id: '6d1f3c1e-8a53-4c44-9d2e-3f0c2b1a9e77',
  userId: 'alice',
  type: TaskType.SubtitleGeneration,
  status: TaskStatus.Processing,
  progress: 0,
  output: null,
  error: null,
  metadata: null,
} as unknown as TaskEntity;

const event: TaskEvent = {
  type: TaskEventType.Started,
  taskId: task.id,
  userId: 'alice',
  sequence: 2,
  timestamp: new Date('2025-01-01T00:00:00Z'),
  task,
};

describe('TaskEventsService', () => {
  it("publishes each event's webhook body on the task's and its owner's channels, and to in-process subscribers", async () => {
    const publish = jest.fn().mockResolvedValue(1);
    const service = new TaskEventsService(new RedisTaskEventBroadcast(fakeRedis(publish)));
    const seen: TaskEvent[] = [];
    service.events$.subscribe((e) => seen.push(e));
    service.publish(event);
    expect(seen).toEqual([event]);
    await tick();
    const body = JSON.stringify(toEventPayload(event));
    expect(publish.mock.calls).toEqual([
      [`pfx:events:task:${task.id}`, body],
      [`pfx:events:user:${ownerKey('alice')}`, body],
    ]);
    expect(seen).toEqual([event]);
  });

  it("publishes a task's creation on its owner's channel only: nobody listens for it on the task's", async () => {
    const publish = jest.fn().mockResolvedValue(1);
    const service = new TaskEventsService(new RedisTaskEventBroadcast(fakeRedis(publish)));
    const created = { ...event, type: TaskEventType.Created, sequence: 1 };
    service.publish(created);
    await tick();
    expect(publish.mock.calls).toEqual([
      [`pfx:events:user:${ownerKey('alice')}`, JSON.stringify(toEventPayload(created))],
    ]);
  });

  it("on a Redis Cluster pins every event of an owner to the master of the owner channel's slot", async () => {
    const publish = jest.fn().mockResolvedValue(1);
    const keys: string[] = [];
    const broadcast = new RedisTaskEventBroadcast(fakeRedis(publish, true, keys));
    await broadcast.send({ ...event, type: TaskEventType.Created, sequence: 1 });
    await broadcast.send(event);
    // PUBLISH names no key: without a keyed command in its pipeline each event would leave through a random master.
    expect(keys).toEqual([`pfx:events:user:${ownerKey('alice')}`, `pfx:events:user:${ownerKey('alice')}`]);
    expect(publish).toHaveBeenCalledTimes(3);
  });

  it('sends the events of one turn of the event loop as one pipeline, in order, each answered with its own outcome', async () => {
    const publish = jest.fn((channel: string) =>
      channel.endsWith(ownerKey('bob')) ? Promise.reject(new Error('READONLY')) : Promise.resolve(1),
    );
    const pipelines: number[] = [];
    const broadcast = new RedisTaskEventBroadcast(fakeRedis(publish, false, [], pipelines));
    const bobs = { ...event, userId: 'bob', taskId: 'b', type: TaskEventType.Created };
    const sent = [broadcast.send(event), broadcast.send(bobs), broadcast.send({ ...event, sequence: 3 })];
    const outcomes = await Promise.allSettled(sent);
    expect(pipelines).toEqual([5]);
    expect(publish.mock.calls.map(([channel]) => channel)).toEqual([
      `pfx:events:task:${task.id}`,
      `pfx:events:user:${ownerKey('alice')}`,
      `pfx:events:user:${ownerKey('bob')}`,
      `pfx:events:task:${task.id}`,
      `pfx:events:user:${ownerKey('alice')}`,
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('a Redis failure is logged at warn and fails nothing: in-process subscribers still get the event', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const publish = jest.fn().mockRejectedValue(new Error("Stream isn't writeable"));
      const service = new TaskEventsService(new RedisTaskEventBroadcast(fakeRedis(publish)));
      const seen: TaskEvent[] = [];
      service.events$.subscribe((e) => seen.push(e));
      expect(() => service.publish(event)).not.toThrow();
      expect(seen).toEqual([event]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ taskId: task.id, sequence: 2 }),
        expect.stringContaining("event not broadcast: Stream isn't writeable"),
      );
    } finally {
      warn.mockRestore();
    }
  });
});
