import { taskRow } from '../../test/support/processing-fakes';
import { TaskStatus, TaskType } from '../tasks/task.enums';
import { deadlineOf, nextStep, StepFacts } from './task-step';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const facts = (overrides: Partial<StepFacts> = {}): StepFacts => ({
  now: NOW,
  timeoutMs: 60_000,
  partMinImages: 10,
  ...overrides,
});
const images = (n: number) => Array.from({ length: n }, (_, i) => ({ url: `https://img.example/${i}.png` }));
const img2vid = (n: number, overrides = {}) =>
  taskRow({ type: TaskType.Img2Vid, input: { images: images(n) }, startedAt: new Date(NOW - 1000), ...overrides });

describe('nextStep', () => {
  it('skips a task that is not processing (a duplicate or stale job)', () => {
    for (const status of [
      TaskStatus.Pending,
      TaskStatus.Queued,
      TaskStatus.Completed,
      TaskStatus.Failed,
      TaskStatus.Cancelled,
    ]) {
      expect([status, nextStep(taskRow({ status }), facts())]).toEqual([status, { kind: 'skip' }]);
    }
  });

  it('times out a task past its timeout since it first started, whatever else its row holds', () => {
    const started = new Date(NOW - 60_000);
    expect(nextStep(taskRow({ startedAt: started }), facts())).toEqual({ kind: 'timed-out' });
    const polling = taskRow({ startedAt: started, provider: 'runway', providerJob: { id: 'j1' } });
    expect(nextStep(polling, facts())).toEqual({ kind: 'timed-out' });
    expect(nextStep(img2vid(40, { startedAt: started, parts: 3 }), facts())).toEqual({ kind: 'timed-out' });
    // A millisecond before: still running.
    expect(nextStep(taskRow({ startedAt: new Date(NOW - 59_999) }), facts())).toEqual({ kind: 'submit' });
  });

  it('counts the deadline from now when the row has no start time', () => {
    expect(deadlineOf({ startedAt: null }, 5000, NOW)).toBe(NOW + 5000);
    expect(deadlineOf({ startedAt: new Date(NOW - 2000) }, 5000, NOW)).toBe(NOW + 3000);
    expect(nextStep(taskRow({ startedAt: null }), facts())).toEqual({ kind: 'submit' });
  });

  it('splits an img2vid task of at least twice the part size, then collects its parts', () => {
    expect(nextStep(img2vid(20), facts())).toEqual({ kind: 'fan-out' });
    expect(nextStep(img2vid(20, { parts: 2 }), facts())).toEqual({ kind: 'collect' });
    // A split task stays split, even with a provider job stored by an older run.
    expect(nextStep(img2vid(20, { parts: 2, providerJob: { id: 'j' }, provider: 'runpod' }), facts())).toEqual({
      kind: 'collect',
    });
  });

  it('runs whole an img2vid task that is small, a part, already at a provider, or when splitting is off', () => {
    expect(nextStep(img2vid(19), facts())).toEqual({ kind: 'submit' });
    expect(nextStep(img2vid(40, { parentId: 'parent-id' }), facts())).toEqual({ kind: 'submit' });
    expect(nextStep(img2vid(40), facts({ partMinImages: 0 }))).toEqual({ kind: 'submit' });
    expect(nextStep(img2vid(40, { provider: 'runpod', providerJob: { id: 'j' } }), facts())).toMatchObject({
      kind: 'poll',
    });
    // Other types never split, however many images they carry.
    expect(nextStep(taskRow({ input: { images: images(40) } }), facts())).toEqual({ kind: 'submit' });
  });

  it('polls a stored provider job at the provider that holds it', () => {
    const task = taskRow({ provider: 'runway', providerJob: { id: 'job-7', queue_position: 2 } });
    expect(nextStep(task, facts({ cacheKey: 'k' }))).toEqual({
      kind: 'poll',
      provider: 'runway',
      providerJob: { id: 'job-7', queue_position: 2 },
    });
    // A provider job without the provider's name cannot be polled: the task starts again.
    expect(nextStep(taskRow({ providerJob: { id: 'job-7' } }), facts())).toEqual({ kind: 'submit' });
  });

  it('looks in the cache first when the task has a cache key, else submits', () => {
    expect(nextStep(taskRow(), facts({ cacheKey: 'key-1' }))).toEqual({ kind: 'cached', cacheKey: 'key-1' });
    expect(nextStep(taskRow(), facts())).toEqual({ kind: 'submit' });
    expect(nextStep(img2vid(19), facts({ cacheKey: 'key-2' }))).toEqual({ kind: 'cached', cacheKey: 'key-2' });
  });
});
