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
function fakeRedis(publish: jest.Mock, clustered = false, keys: string[] = []): RedisService {
  const pipeline = () => {
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
      exec: () =>
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
  it("publishes each event's webhook body on the task's and its owner's channels, and to in-process subscribers", () => {
    const publish = jest.fn().mockResolvedValue(1);
    const service = new TaskEventsService(new RedisTaskEventBroadcast(fakeRedis(publish)));
    const seen: TaskEvent[] = [];
    service.events$.subscribe((e) => seen.push(e));
    service.publish(event);
    const body = JSON.stringify(toEventPayload(event));
    expect(publish.mock.calls).toEqual([
      [`pfx:events:task:${task.id}`, body],
      [`pfx:events:user:${ownerKey('alice')}`, body],
    ]);
    expect(seen).toEqual([event]);
  });

  it("publishes a task's creation on its owner's channel only: nobody listens for it on the task's", () => {
    const publish = jest.fn().mockResolvedValue(1);
    const service = new TaskEventsService(new RedisTaskEventBroadcast(fakeRedis(publish)));
    const created = { ...event, type: TaskEventType.Created, sequence: 1 };
    service.publish(created);
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
