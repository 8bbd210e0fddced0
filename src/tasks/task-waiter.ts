import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { TaskEventSubscriptions } from '../events/task-event-subscriptions';

/**
 * The longest `Prefer: wait` honoured on the platform's own routes (CONTRACT.md): a longer one is a 400, not silently
 * shortened. The synchronous routes of the video API of the sources allow SOURCES_SYNC_WAIT_SECONDS instead.
 */
export const MAX_WAIT_SECONDS = 60;

const TERMINAL = new Set(['task.completed', 'task.failed', 'task.cancelled']);

/**
 * `Prefer: wait` or `Prefer: wait=N` (RFC 7240): the seconds to hold a create answer, or undefined when the client
 * does not ask. A bare `wait` is the longest wait, `max`.
 */
export function parsePreferWait(header: string | string[] | undefined, max = MAX_WAIT_SECONDS): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return undefined;
  for (const preference of value.split(',')) {
    const match = /^\s*wait\s*(?:=\s*"?([^",;\s]*)"?)?\s*(?:;.*)?$/i.exec(preference);
    if (!match) continue;
    if (match[1] === undefined) return max;
    const seconds = Number(match[1]);
    if (!/^\d+$/.test(match[1]) || seconds > max) {
      throw new DomainException(
        ErrorCode.ValidationFailed,
        `Prefer: wait must be a whole number of seconds from 0 to ${max}, not "${match[1]}"`,
      );
    }
    return seconds;
  }
  return undefined;
}

/** What a create with `Prefer: wait` ended with: the task as created, and whether it finished within the wait. */
export interface WaitedCreate<T> {
  created: T;
  finished: boolean;
}

/**
 * Waits for a task to finish on its event stream (across processes), never by polling the database. At shutdown every
 * wait ends at once (the client gets the task as it stands, with its status URL), so a long wait never holds a
 * deploy.
 */
@Injectable()
export class TaskWaiter implements BeforeApplicationShutdown {
  private readonly waiting = new Set<(finished: boolean) => void>();
  private shuttingDown = false;

  constructor(private readonly subscriptions: TaskEventSubscriptions) {}

  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
    for (const settle of this.waiting) settle(false);
  }

  /**
   * Subscribes now (call it before the task can run, so its end cannot be missed) and answers, in `finished`, a
   * promise of whether the task finished within `seconds` (wrapped: an async function would flatten it).
   */
  async watch(taskId: string, seconds: number): Promise<{ finished: Promise<boolean> }> {
    let settle!: (finished: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => (settle = resolve));
    const unsubscribe = await this.subscriptions.subscribe(taskId, (payload) => {
      if (TERMINAL.has(payload.event_type)) settle(true);
    });
    const timer = setTimeout(() => settle(false), seconds * 1000);
    this.waiting.add(settle);
    // A wait whose subscription came through after shutdown began would outlive it: it ends now.
    if (this.shuttingDown) settle(false);
    return {
      finished: outcome.finally(() => {
        clearTimeout(timer);
        this.waiting.delete(settle);
        unsubscribe();
      }),
    };
  }

  /**
   * Creates a task with a fresh id (`create`), holding the answer until it finishes or `seconds` pass. The subscription
   * is made before the task exists, so a fast task's end is never missed.
   */
  async createAndWait<T>(seconds: number, create: (id: string) => Promise<T>): Promise<WaitedCreate<T>> {
    const id = randomUUID();
    const { finished } = await this.watch(id, seconds);
    const created = await create(id).catch((err: unknown) => {
      void finished.catch(() => undefined);
      throw err;
    });
    return { created, finished: await finished };
  }
}
