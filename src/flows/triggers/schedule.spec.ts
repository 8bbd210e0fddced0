import { nextTicksOf, parseEvery, scheduleProblems } from './schedule';
import { tickTimeOf } from './flow-tick.handler';

describe('schedule triggers', () => {
  it('parses intervals: s, m, h, d (and ms), nothing else', () => {
    expect(parseEvery('30s')).toBe(30_000);
    expect(parseEvery('15m')).toBe(900_000);
    expect(parseEvery('1h')).toBe(3_600_000);
    expect(parseEvery('1d')).toBe(86_400_000);
    expect(parseEvery('1500ms')).toBe(1500);
    expect(parseEvery('1w')).toBeNull();
    expect(parseEvery('m15')).toBeNull();
    expect(parseEvery('')).toBeNull();
  });

  it('names each problem of a schedule by its field', () => {
    expect(scheduleProblems({ type: 'schedule', cron: '*/5 * * * *', timezone: 'Europe/Paris' })).toEqual([]);
    expect(scheduleProblems({ type: 'schedule', every: '1s' })).toEqual([]);
    expect(scheduleProblems({ type: 'webhook' })).toEqual([]);
    expect(scheduleProblems({ type: 'schedule', cron: '61 * * * *' })).toEqual([
      expect.stringMatching(/^trigger\.cron: invalid cron expression: /),
    ]);
    expect(scheduleProblems({ type: 'schedule', cron: 'every day' })).toEqual([
      expect.stringMatching(/^trigger\.cron: invalid cron expression/),
    ]);
    expect(scheduleProblems({ type: 'schedule', cron: '0 9 * * *', timezone: 'Mars/Olympus' })).toEqual([
      'trigger.timezone: "Mars/Olympus" is not an IANA time zone such as "Europe/Paris"',
    ]);
    expect(scheduleProblems({ type: 'schedule', every: '500ms' })).toEqual([
      'trigger.every: must be at least 1s (1000 ms)',
    ]);
    expect(scheduleProblems({ type: 'schedule', every: 'often' })).toEqual([
      'trigger.every: must be an interval such as "30s", "15m", "1h" or "1d"',
    ]);
    expect(scheduleProblems({ type: 'schedule' })).toEqual([
      expect.stringMatching(/^trigger: a schedule needs exactly one of cron .* or every/),
    ]);
    expect(scheduleProblems({ type: 'schedule', cron: '* * * * *', every: '1m' })).toEqual([
      expect.stringMatching(/^trigger: a schedule needs exactly one of/),
    ]);
  });

  it('gives the next ticks: a cron in its time zone, an interval counted from now', () => {
    const from = Date.parse('2026-12-04T10:07:30Z'); // a Friday
    expect(nextTicksOf({ type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Paris' }, 3, from)).toEqual([
      '2026-12-07T08:00:00.000Z',
      '2026-12-08T08:00:00.000Z',
      '2026-12-09T08:00:00.000Z',
    ]);
    expect(nextTicksOf({ type: 'schedule', cron: '0 9 * * *' }, 1, from)).toEqual(['2026-12-05T09:00:00.000Z']);
    expect(nextTicksOf({ type: 'schedule', every: '15m' }, 2, from)).toEqual([
      '2026-12-04T10:22:30.000Z',
      '2026-12-04T10:37:30.000Z',
    ]);
    expect(nextTicksOf({ type: 'schedule', every: '1s' }, 0, from)).toEqual([]);
    expect(nextTicksOf({ type: 'schedule', cron: 'bad' }, 2, from)).toEqual([]);
  });

  it("takes a tick's time from BullMQ's prevMillis, else from its job id", () => {
    expect(tickTimeOf({ id: 'repeat:flow-a:1700000001000', opts: { prevMillis: 1700000001000 }, timestamp: 5 })).toBe(
      1700000001000,
    );
    expect(tickTimeOf({ id: 'repeat:flow-a:1700000002000', opts: {}, timestamp: 5 })).toBe(1700000002000);
    expect(tickTimeOf({ id: 'x', opts: {}, timestamp: 5 })).toBe(5);
  });
});
