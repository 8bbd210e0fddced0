import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { TaskEventSubscriptions } from '../events/task-event-subscriptions';
import { HeldConnections, refusalMessage } from '../rate-limit/held-connections.service';

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

/**
 * What a create with `Prefer: wait` ended with: the task as created, whether it finished within the wait, and whether
 * there was a wait at all (not when the user or the process already held too many connections open).
 */
export interface WaitedCreate<T> {
  created: T;
  finished: boolean;
  waited: boolean;
}

/**
 * Waits for a task to finish on its event stream (across processes), never by polling the database. At shutdown every
 * wait ends at once (the client gets the task as it stands, with its status URL), so a long wait never holds a
 * deploy. A wait holds one of the user's places (HeldConnections); without one the task is answered at once.
 */
@Injectable()
export class TaskWaiter implements BeforeApplicationShutdown {
  private readonly logger = new Logger('TaskWaiter');
  private readonly waiting = new Set<(finished: boolean) => void>();
  /** Set at shutdown: a wait that begins after it ends at once too, or it would hold the server open. */
  private closing = false;

  constructor(
    private readonly subscriptions: TaskEventSubscriptions,
    private readonly held: HeldConnections,
  ) {}

  beforeApplicationShutdown(): void {
    this.closing = true;
    for (const settle of this.waiting) settle(false);
  }

  /**
   * Subscribes now (call it before the task can run, so its end cannot be missed) and answers, in `finished`, a
   * promise of whether the task finished within `seconds` (wrapped: an async function would flatten it).
   */
  async watch(taskId: string, seconds: number): Promise<{ finished: Promise<boolean> }> {
    let settle!: (finished: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => (settle = resolve));
    const unsubscribe = await this.subscriptions.subscribe({ task: taskId }, (payload) => {
      if (TERMINAL.has(payload.event_type)) settle(true);
    });
    const timer = setTimeout(() => settle(false), seconds * 1000);
    this.waiting.add(settle);
    if (this.closing) settle(false);
    return {
      finished: outcome.finally(() => {
        clearTimeout(timer);
        this.waiting.delete(settle);
        unsubscribe();
      }),
    };
  }

  /**
   * Creates a task with a fresh id (`create`) for `userId`, holding the answer until it finishes or `seconds` pass. The
   * subscription is made before the task exists, so a fast task's end is never missed. When the user or this process
   * already holds too many connections open, the task is created and answered at once (`waited: false`): a refusal
   * would lose the task's id.
   */
  async createAndWait<T>(
    userId: string,
    seconds: number,
    create: (id: string) => Promise<T>,
  ): Promise<WaitedCreate<T>> {
    const id = randomUUID();
    if (seconds === 0) return { created: await create(id), finished: false, waited: true };
    const place = await this.held.acquire(userId);
    if (!('release' in place)) {
      this.logger.debug(`Prefer: wait not honoured: ${refusalMessage(place)}`);
      return { created: await create(id), finished: false, waited: false };
    }
    try {
      const { finished } = await this.watch(id, seconds);
      const created = await create(id).catch((err: unknown) => {
        void finished.catch(() => undefined);
        throw err;
      });
      return { created, finished: await finished, waited: true };
    } finally {
      place.release();
    }
  }
}
