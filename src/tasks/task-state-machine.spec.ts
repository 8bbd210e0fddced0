import { TaskEntity } from './entities/task.entity';
import { canTransition, TaskStateMachine } from './task-state-machine';
import { TERMINAL_STATUSES, TaskEventType, TaskStatus, TaskType } from './task.enums';
import { TasksRepository } from './tasks.repository';

const ALL = Object.values(TaskStatus);

describe('task state machine rules', () => {
  it('follows pending → queued → processing → completed | failed | cancelled', () => {
    expect(canTransition(TaskStatus.Pending, TaskStatus.Queued)).toBe(true);
    expect(canTransition(TaskStatus.Queued, TaskStatus.Processing)).toBe(true);
    expect(canTransition(TaskStatus.Processing, TaskStatus.Completed)).toBe(true);
    expect(canTransition(TaskStatus.Processing, TaskStatus.Failed)).toBe(true);
    expect(canTransition(TaskStatus.Processing, TaskStatus.Cancelled)).toBe(true);
    expect(canTransition(TaskStatus.Queued, TaskStatus.Cancelled)).toBe(true);
  });

  it('never skips processing on the way to completed', () => {
    expect(canTransition(TaskStatus.Queued, TaskStatus.Completed)).toBe(false);
    expect(canTransition(TaskStatus.Pending, TaskStatus.Completed)).toBe(false);
  });

  it('lets nothing leave a terminal status except a retry back to queued (and never from completed)', () => {
    for (const from of TERMINAL_STATUSES) {
      for (const to of ALL) {
        const allowed = to === TaskStatus.Queued && from !== TaskStatus.Completed;
        expect([from, to, canTransition(from, to)]).toEqual([from, to, allowed]);
      }
    }
  });

  it('has no self-transitions', () => {
    for (const status of ALL) expect(canTransition(status, status)).toBe(false);
  });

  it('emits one event per transition into a status, and none for a return to the queue', async () => {
    // A repository whose conditional update always wins, and the events the machine publishes after it.
    const published: TaskEventType[] = [];
    const transition = jest.fn((id: string, _from: TaskStatus[], to: TaskStatus, _patch: unknown, _opts: unknown) =>
      Promise.resolve({
        task: TaskEntity.create({ id, userId: 'u', type: TaskType.ImageGeneration, input: {}, status: to }),
        deliveryId: null,
      }),
    );
    const machine = new TaskStateMachine(
      { transition } as unknown as TasksRepository,
      { publish: (e: { type: TaskEventType }) => published.push(e.type) } as never,
      { dispatch: jest.fn() } as never,
      {} as never,
    );
    const error = { code: 'provider_error', message: 'boom' };
    await machine.start('t');
    await machine.requeue('t', [TaskStatus.Processing], error);
    await machine.start('t');
    await machine.complete('t', { output: {}, provider: 'p' });
    await machine.fail('t', error);
    await machine.cancel('t');
    await machine.retry('t');
    expect(published).toEqual([
      TaskEventType.Started,
      TaskEventType.Started,
      TaskEventType.Completed,
      TaskEventType.Failed,
      TaskEventType.Cancelled,
    ]);
    // Each update carries the event it bumps the sequence for (none for a return to the queue).
    expect(transition.mock.calls.map(([, , , , opts]) => (opts as { event: TaskEventType | null }).event)).toEqual([
      TaskEventType.Started,
      null,
      TaskEventType.Started,
      TaskEventType.Completed,
      TaskEventType.Failed,
      TaskEventType.Cancelled,
      null,
    ]);
  });

  it('lets nothing enter pending: a task is created queued', () => {
    for (const from of ALL) expect(canTransition(from, TaskStatus.Pending)).toBe(false);
  });
});
