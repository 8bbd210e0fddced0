import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../config/app-config';
import { WebhookAttempts } from './webhook-attempts';
import { WebhookQueue } from './webhook-queue.service';

/**
 * How many times a delivery sent at commit that waits behind one another sender holds is looked at again in process
 * (20, 40 ms later: that sender normally sends it next) before its job takes over.
 */
const LOOKS_AT_COMMIT = 3;

/**
 * Where a delivery goes once the transaction that wrote its row has committed (WEBHOOK_SEND_AT_COMMIT, on by default):
 * the process that committed it, API or worker, sends it at once through the same attempts as a `webhook.deliver`
 * job (claim under a lease, sequence order per task and URL, URL guard, signing, the host rate, the timeout, the
 * attempt recorded in the row), so it does not wait for a queue round trip and a worker slot. The queue stays the
 * guarantee:
 * - at most WEBHOOK_CONCURRENCY lines are sent at once this way in a process; beyond them, and while it shuts down,
 *   a delivery gets its job as before (a slow receiver cannot pile up sends in memory);
 * - a failed first attempt gets its `webhook.retry` job, with the backoff, as in a job;
 * - a delivery held by its host's rate, or still behind one another sender holds after a few looks, gets a delayed
 *   `webhook.deliver` job; one whose attempt could not be made (Postgres away) gets its job at once;
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
        const waitMs = next.until - Date.now();
        if (!next.behind || looks + 1 >= LOOKS_AT_COMMIT || this.closing) {
          await this.queue.addLater(deliveryId, waitMs);
          return;
        }
        await sleep(Math.max(0, waitMs));
      }
    } catch (err) {
      // The row is committed: its job sends it (or the reconciler, if this add is lost too).
      this.logger.warn({ deliveryId }, `delivery handed to the queue: ${(err as Error).message}`);
      this.queue.dispatch(deliveryId);
    }
  }
}
