import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import { GroupCommit } from '../common/group-commit';
import { JobName, QueueName } from './queue.constants';

/**
 * Puts webhook deliveries on their queue. A new delivery rings once (`webhook.deliver`, job id = delivery id, so
 * ringing twice is harmless): the job sends the first attempts of that task's line to that URL, in order. A retry
 * or a replay is a `webhook.retry` job of its own (job id = delivery id and attempts made). The delivery row is already
 * written when this runs; a job that fails to be added is made by the reconciler, which finds the row overdue.
 * Adds that happen together go as one `addBulk`.
 */
@Injectable()
export class WebhookQueue {
  private readonly logger = new Logger('WebhookQueue');
  private readonly adds = new GroupCommit<string, void>((_key, ids) => this.addAll(ids));

  constructor(@InjectQueue(QueueName.Webhooks) private readonly queue: Queue) {}

  /** Fire and forget. */
  dispatch(deliveryId: string): void {
    this.adds
      .submit('add', deliveryId)
      .catch((err: Error) => this.logger.warn({ deliveryId }, `delivery left to the reconciler: ${err.message}`));
  }

  /** Awaited form, for the reconciler. */
  async add(deliveryId: string): Promise<void> {
    await this.adds.submit('add', deliveryId);
  }

  /** The next attempt of a delivery that has had `attempts`, after `delayMs`. */
  async addRetry(deliveryId: string, attempts: number, delayMs = 0): Promise<void> {
    await this.queue.add(
      JobName.WebhookRetry,
      { deliveryId },
      {
        jobId: `${deliveryId}.a${attempts}`, // ":" is not allowed in job ids
        delay: Math.max(0, Math.round(delayMs)),
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  private async addAll(ids: string[]): Promise<void[]> {
    await this.queue.addBulk(
      ids.map((id) => ({
        name: JobName.WebhookDeliver,
        data: { deliveryId: id },
        // Removed when done, so the reconciler can ring again for a line whose sender died.
        opts: { jobId: id, removeOnComplete: true, removeOnFail: true },
      })),
    );
    return ids.map(() => undefined);
  }
}
