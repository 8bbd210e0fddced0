import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../config/app-config';
import { WebhookAttempts } from './webhook-attempts';
import { WebhookQueue } from './webhook-queue.service';

/**
 * A delivery behind a line another sender holds is looked at again here, after 20, 40 and 80 ms (or as soon as this
 * process records the attempt of the delivery ahead, when it is the sender), before it gets a delayed job: the holder
 * had looked for its next delivery in the instant before this one's row was visible, and frees the line within
 * milliseconds. A longer wait (a host's rate used up) goes to the queue.
 */
const LOCAL_LOOKS = 4;
const LOCAL_WAIT_MAX_MS = 200;

/**
 * Where a delivery goes once the transaction that wrote its row has committed (WEBHOOK_SEND_AT_COMMIT, on by default):
 * the process that committed it, API or worker, sends it at once through the same attempts as a `webhook.deliver`
 * job (claim under a lease, sequence order per task and URL, URL guard, signing, the host rate, the timeout, the
 * attempt recorded in the row), so it does not wait for a queue round trip and a worker slot. The queue stays the
 * guarantee:
 * - at most WEBHOOK_CONCURRENCY lines are sent at once this way in a process (their claims and records share one
 *   statement of each kind at a time, so they hold two of its database connections at most, however many lines, and
 *   the requests and transitions of the process always find a free one); beyond them, and while it shuts down, a
 *   delivery gets its job as before (a slow receiver cannot pile up sends in memory);
 * - a failed first attempt gets its `webhook.retry` job, with the backoff, as in a job;
 * - a delivery behind one another sender holds (which normally sends it next) is looked at again here a few times
 *   within 140 ms, in case that sender looked for its next delivery just before this row was visible; one still held
 *   then, or held by its host's rate, gets a delayed `webhook.deliver` job;
 *   one whose attempt could not be made (Postgres away) gets its job at once;
 * - a process that dies between the commit and the attempt leaves the row pending and unleased (or leased until its
 *   lease lapses), which the reconciler finds overdue after RECONCILE_GRACE_MS and gives a job.
 * The claim is the row's lease: the job of a delivery sent here finds it attempted or leased and sends nothing.
 */
@Injectable()
export class WebhookDispatch implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private readonly sending = new Set<Promise<void>>();
  private readonly atCommit: boolean;
  private readonly limit: number;
  private closing = false;

  constructor(
    config: AppConfig,
    private readonly attempts: WebhookAttempts,
    private readonly queue: WebhookQueue,
  ) {
    this.atCommit = config.webhook.sendAtCommit;
    this.limit = config.webhook.concurrency;
  }

  /** After the commit that wrote the delivery's row. Fire and forget. */
  dispatch(deliveryId: string): void {
    if (!this.atCommit || this.closing || this.sending.size >= this.limit) {
      this.queue.dispatch(deliveryId);
      return;
    }
    const sent = this.send(deliveryId).finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }

  /** Lines sent at commit right now (for tests and the metrics of a busy process). */
  get inFlight(): number {
    return this.sending.size;
  }

  /** Before the database closes, so the attempts under way are recorded; new deliveries go to the queue meanwhile. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all(this.sending);
  }

  private async send(deliveryId: string): Promise<void> {
    try {
      for (let looks = 0; ; looks++) {
        const next = await this.attempts.sendFirstAttempts(deliveryId, looks);
        if (next.kind !== 'wait') return;
        const waitMs = Math.max(0, next.until - Date.now());
        if (this.closing || looks + 1 >= LOCAL_LOOKS || waitMs > LOCAL_WAIT_MAX_MS) {
          await this.queue.addLater(deliveryId, waitMs);
          return;
        }
        // Woken as soon as this process records the delivery ahead (its sender is usually here too).
        await (next.behind ? this.attempts.waitBehind(next.behind, waitMs) : sleep(waitMs));
      }
    } catch (err) {
      // The row is committed: its job sends it (or the reconciler, if this add is lost too).
      this.logger.warn({ deliveryId }, `delivery handed to the queue: ${(err as Error).message}`);
      this.queue.dispatch(deliveryId);
    }
  }
}
