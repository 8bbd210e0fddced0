import { CronExpressionParser } from 'cron-parser';
import type { FlowTrigger } from '../flow-ports';

/** The shortest interval a schedule may have. */
export const SCHEDULE_MIN_EVERY_MS = 1000;
/** The longest: a schedule further apart than this is better said as a cron. */
export const SCHEDULE_MAX_EVERY_MS = 366 * 86_400_000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const EVERY = /^\s*(\d{1,12})\s*(ms|s|m|h|d)\s*$/i;

/** `"15m"`, `"1h"`, `"30s"`, `"1d"` (or `"500ms"`) in milliseconds; null when it is not such an interval. */
export function parseEvery(every: string): number | null {
  const match = EVERY.exec(every);
  if (!match) return null;
  return Number(match[1]) * UNIT_MS[match[2].toLowerCase() as keyof typeof UNIT_MS];
}

/** True when `zone` is an IANA time zone this runtime knows ("Europe/Paris", "UTC"). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Every problem of a schedule trigger, each "trigger.<field>: <message>"; none for other triggers. */
export function scheduleProblems(trigger: FlowTrigger): string[] {
  if (trigger.type !== 'schedule') return [];
  const problems: string[] = [];
  const hasCron = trigger.cron !== undefined && trigger.cron !== null;
  const hasEvery = trigger.every !== undefined && trigger.every !== null;
  if (hasCron === hasEvery) {
    problems.push('trigger: a schedule needs exactly one of cron (with an optional timezone) or every (such as "15m")');
  }
  if (trigger.timezone !== undefined && trigger.timezone !== null) {
    if (typeof trigger.timezone !== 'string' || !isTimeZone(trigger.timezone)) {
      problems.push(
        `trigger.timezone: ${JSON.stringify(trigger.timezone)} is not an IANA time zone such as "Europe/Paris"`,
      );
    } else if (hasEvery && !hasCron) {
      problems.push('trigger.timezone: only a cron schedule takes a timezone');
    }
  }
  if (hasCron) {
    if (typeof trigger.cron !== 'string' || trigger.cron.length > 200) {
      problems.push('trigger.cron: must be a cron expression of at most 200 characters');
    } else {
      try {
        CronExpressionParser.parse(trigger.cron, { tz: 'UTC' });
      } catch (err) {
        problems.push(`trigger.cron: invalid cron expression: ${(err as Error).message}`);
      }
    }
  }
  if (hasEvery) {
    const ms = typeof trigger.every === 'string' ? parseEvery(trigger.every) : null;
    if (ms === null) {
      problems.push('trigger.every: must be an interval such as "30s", "15m", "1h" or "1d"');
    } else if (ms < SCHEDULE_MIN_EVERY_MS) {
      problems.push(`trigger.every: must be at least 1s (${SCHEDULE_MIN_EVERY_MS} ms)`);
    } else if (ms > SCHEDULE_MAX_EVERY_MS) {
      problems.push('trigger.every: must be at most 366d');
    }
  }
  return problems;
}

/** BullMQ's repeat options of a valid schedule trigger. */
export function repeatOf(trigger: FlowTrigger): { pattern: string; tz?: string } | { every: number } {
  if (trigger.cron) return { pattern: trigger.cron, ...(trigger.timezone ? { tz: trigger.timezone } : {}) };
  const every = trigger.every ? parseEvery(trigger.every) : null;
  if (every === null) throw new Error('a schedule trigger without cron or every');
  return { every };
}

/**
 * The next `count` ticks of a valid schedule trigger after `from`, as ISO times. An interval's ticks are counted
 * from `from`: BullMQ ticks an interval from the moment its scheduler was made, which the trigger does not hold.
 */
export function nextTicksOf(trigger: FlowTrigger, count: number, from = Date.now()): string[] {
  if (trigger.type !== 'schedule' || count <= 0 || scheduleProblems(trigger).length) return [];
  const repeat = repeatOf(trigger);
  if ('every' in repeat) {
    const first = from + repeat.every;
    return Array.from({ length: count }, (_, i) => new Date(first + i * repeat.every).toISOString());
  }
  const cron = CronExpressionParser.parse(repeat.pattern, { tz: repeat.tz ?? 'UTC', currentDate: new Date(from) });
  const ticks: string[] = [];
  for (let i = 0; i < count && cron.hasNext(); i++) ticks.push(cron.next().toISOString() ?? '');
  return ticks;
}
