import { ALLOWED_FROM, canTransition, EVENT_FOR_STATUS } from './task-state-machine';
import { TERMINAL_STATUSES, TaskEventType, TaskStatus } from './task.enums';

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

  it('emits one event per transition into a status, and none for a return to the queue', () => {
    expect(EVENT_FOR_STATUS).toEqual({
      [TaskStatus.Pending]: null,
      [TaskStatus.Queued]: null,
      [TaskStatus.Processing]: TaskEventType.Started,
      [TaskStatus.Completed]: TaskEventType.Completed,
      [TaskStatus.Failed]: TaskEventType.Failed,
      [TaskStatus.Cancelled]: TaskEventType.Cancelled,
    });
    expect(ALLOWED_FROM[TaskStatus.Pending]).toEqual([]);
  });
});
