import { throttledProgress } from './task-progress';

describe('throttledProgress', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('sends the first value at once, then the last of a burst when the interval is up', () => {
    const sent: number[] = [];
    const report = throttledProgress(
      (p) => sent.push(p),
      () => true,
      1000,
    );
    report(0.1);
    report(0.2);
    report(0.3);
    expect(sent).toEqual([0.1]);
    jest.advanceTimersByTime(999);
    expect(sent).toEqual([0.1]);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([0.1, 0.3]);
    // A value after a quiet interval goes at once.
    jest.advanceTimersByTime(1000);
    report(0.5);
    expect(sent).toEqual([0.1, 0.3, 0.5]);
  });

  it('drops the pending value when the run has ended meanwhile, and ignores values that are not numbers', () => {
    const sent: number[] = [];
    let running = true;
    const report = throttledProgress(
      (p) => sent.push(p),
      () => running,
      1000,
    );
    report(Number.NaN);
    report(0.1);
    report(0.2);
    running = false;
    jest.advanceTimersByTime(1000);
    expect(sent).toEqual([0.1]);
  });
});
