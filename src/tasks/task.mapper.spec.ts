import { TaskEntity } from './entities/task.entity';
import { decodeCursor, encodeCursor, toTaskResponse } from './task.mapper';
import { TaskStatus, TaskType } from './task.enums';

function task(overrides: Partial<TaskEntity> = {}): TaskEntity {
  return TaskEntity.create({
    id: '0b9a7c1e-1111-4222-8333-944455556666',
    userId: 'alice',
    type: TaskType.SubtitleGeneration,
    input: { text: 'x' },
    webhookSecret: 'never-shown-secret',
    createdAt: new Date('2026-01-01T00:00:00.000Z'),
    ...overrides,
  });
}

describe('task responses', () => {
  it('never carries the webhook secret', () => {
    const body = JSON.stringify(toTaskResponse(task()));
    expect(body).not.toContain('never-shown-secret');
    expect(body).not.toContain('webhook_secret');
  });

  it('computes delay and execution times from the timestamps', () => {
    const queued = toTaskResponse(task(), { now: new Date('2026-01-01T00:00:02.000Z') });
    expect(queued.delay_time_ms).toBe(2000);
    expect(queued.execution_time_ms).toBeNull();
    const done = toTaskResponse(
      task({
        status: TaskStatus.Completed,
        startedAt: new Date('2026-01-01T00:00:00.250Z'),
        completedAt: new Date('2026-01-01T00:00:01.750Z'),
        costAmount: 0.04,
        costCurrency: 'USD',
      }),
    );
    expect(done.delay_time_ms).toBe(250);
    expect(done.execution_time_ms).toBe(1500);
    expect(done.cost).toEqual({ amount: 0.04, currency: 'USD' });
  });

  it('shows the place in a provider’s queue while the task waits there, and only then', () => {
    const waiting = task({
      status: TaskStatus.Processing,
      startedAt: new Date('2026-01-01T00:00:01.000Z'),
      provider: 'fal',
      providerJob: { id: 'req-1', queue_position: 3 },
    });
    expect(toTaskResponse(waiting).queue_position).toBe(3);
    // The platform's own line wins while queued; a running job out of the provider's queue shows none.
    expect(toTaskResponse(waiting, { queuePosition: 7 }).queue_position).toBe(7);
    expect(toTaskResponse(task({ ...waiting, providerJob: { id: 'req-1' } })).queue_position).toBeUndefined();
    expect(
      toTaskResponse(task({ ...waiting, status: TaskStatus.Completed, completedAt: new Date() })).queue_position,
    ).toBeUndefined();
  });

  it('round-trips the cursor and rejects garbage', () => {
    const t = task();
    expect(decodeCursor(encodeCursor(t))).toEqual({ createdAt: t.createdAt, id: t.id });
    expect(decodeCursor('garbage')).toBeNull();
    expect(decodeCursor(Buffer.from('2026-01-01|not-a-uuid').toString('base64url'))).toBeNull();
  });
});
