import { TaskRuns } from './task-runs';

describe('TaskRuns', () => {
  afterEach(() => jest.useRealTimers());

  it('stops an older run of the same task when a new one begins (its lock is gone)', () => {
    const runs = new TaskRuns();
    const older = runs.begin('t1', 'token-a', Date.now() + 60_000);
    const other = runs.begin('t2', 'token-b', Date.now() + 60_000);
    const newer = runs.begin('t1', 'token-c', Date.now() + 60_000);
    expect(older.abortReason).toBe('lock_lost');
    expect(newer.abortReason).toBeUndefined();
    expect(other.abortReason).toBeUndefined();
    expect(runs.isRunning('t1')).toBe(true);
    runs.end(older);
    runs.end(other);
    runs.end(newer);
    expect(runs.size).toBe(0);
  });

  it('stops a run at its deadline, and not once it has ended', () => {
    jest.useFakeTimers();
    const runs = new TaskRuns();
    const late = runs.begin('t1', 'a', Date.now() + 1000);
    const ended = runs.begin('t2', 'b', Date.now() + 1000);
    runs.end(ended);
    jest.advanceTimersByTime(999);
    expect(late.abortReason).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(late.abortReason).toBe('timeout');
    expect(ended.abortReason).toBeUndefined();
    expect(runs.isRunning('t1')).toBe(false);
    runs.end(late);
  });

  it('stops the runs of a cancelled task, and every run at shutdown', () => {
    const runs = new TaskRuns();
    const a = runs.begin('t1', 'a', Date.now() + 60_000);
    const b = runs.begin('t2', 'b', Date.now() + 60_000);
    runs.abort('t1', 'cancelled');
    expect([a.abortReason, b.abortReason]).toEqual(['cancelled', undefined]);
    runs.abortAll('shutdown');
    expect(b.abortReason).toBe('shutdown');
    runs.end(a);
    runs.end(b);
  });

  it('on a lost lock, stops the runs that do not hold it, and every run when the lock cannot be read', async () => {
    const runs = new TaskRuns();
    const holder = runs.begin('t1', 'token-now', Date.now() + 60_000);
    const stranger = runs.begin('t2', 'token-old', Date.now() + 60_000);
    const unreadable = runs.begin('t3', 'token-x', Date.now() + 60_000);
    const readLock = jest.fn(async (jobId: string) => {
      if (jobId === 't3') throw new Error('redis away');
      return jobId === 't1' ? 'token-now' : 'token-new';
    });
    await runs.lockLost(['t1', 't2', 't3', 'not-running-here'], readLock);
    expect(holder.abortReason).toBeUndefined();
    expect(stranger.abortReason).toBe('lock_lost');
    expect(unreadable.abortReason).toBe('lock_lost');
    // A job with no run here needs no look at its lock.
    expect(readLock.mock.calls.map(([id]) => id)).toEqual(['t1', 't2', 't3']);
    for (const run of [holder, stranger, unreadable]) runs.end(run);
  });
});
