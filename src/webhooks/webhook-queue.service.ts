import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import { GroupCommit } from '../common/group-commit';
import { AppConfig } from '../config/app-config';
import { JobName, QueueName, WEBHOOK_BACKOFF_TYPE } from '../queue/queue.constants';
import { jobTraceMetadata } from '../telemetry/telemetry';
import { WebhookDeliverData, WebhookRetryData } from './webhook-jobs';

/**
 * Puts webhook deliveries on their queue. A new delivery gets one `webhook.deliver` job (job id = delivery id, so a
 * second add is a no-op): the job sends the first attempts of that task's deliveries to that URL, in order. A
 * delivery that needs attempts after its first (a retry, or a replay) gets a `webhook.retry` job that BullMQ runs
 * again, with the webhook backoff, after each failed attempt (job id = delivery id and attempts made when it was
 * added). The delivery row is already written when this runs; a job that fails to be added is made by the
 * reconciler, which finds the row overdue. Adds that happen together go as one `addBulk`; each job carries the trace
 * of the call that dispatched it (with tracing on), not that of the batch's first.
 */
@Injectable()
export class WebhookQueue {
  private readonly logger = new Logger('WebhookQueue');
  private readonly adds = new GroupCommit<QueuedDelivery, void>((_key, deliveries) => this.addAll(deliveries));

  constructor(
    @InjectQueue(QueueName.Webhooks) private readonly queue: Queue<WebhookDeliverData | WebhookRetryData>,
    private readonly config: AppConfig,
  ) {}

  /** Fire and forget. */
  dispatch(deliveryId: string): void {
    this.adds
      .submit('add', { deliveryId, trace: jobTraceMetadata() })
      .catch((err: Error) => this.logger.warn({ deliveryId }, `delivery left to the reconciler: ${err.message}`));
  }

  /** Awaited form, for the reconciler. */
  async add(deliveryId: string): Promise<void> {
    await this.adds.submit('add', { deliveryId, trace: jobTraceMetadata() });
  }

  /**
   * The `webhook.deliver` job of a delivery whose first attempt, tried at commit, must wait `delayMs` (its host's
   * rate is used up, or it waits behind one another sender holds). The same job id as `add`: a no-op if there is one.
   */
  async addLater(deliveryId: string, delayMs: number): Promise<void> {
    await this.queue.add(
      JobName.WebhookDeliver,
      { deliveryId },
      {
        jobId: deliveryId,
        delay: Math.max(0, Math.ceil(delayMs)),
        removeOnComplete: true,
        removeOnFail: true,
        ...telemetryOf(jobTraceMetadata()),
      },
    );
  }

  /**
   * The attempts after the first of a delivery that has had `attempts`, the first of them after `delayMs`. BullMQ's
   * `attempts` is only a ceiling: the row counts the attempts of the round and says when the delivery is dead.
   */
  async addRetry(deliveryId: string, attempts: number, delayMs = 0): Promise<void> {
    await this.queue.add(
      JobName.WebhookRetry,
      { deliveryId, attempts },
      {
        jobId: `${deliveryId}.a${attempts}`, // ":" is not allowed in job ids
        delay: Math.max(0, Math.round(delayMs)),
        attempts: 1 + this.config.webhook.maxRetries,
        backoff: { type: WEBHOOK_BACKOFF_TYPE },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  private async addAll(deliveries: QueuedDelivery[]): Promise<void[]> {
    await this.queue.addBulk(
      deliveries.map(({ deliveryId, trace }) => ({
        name: JobName.WebhookDeliver,
        data: { deliveryId },
        // Removed when done, so the reconciler can add it again for deliveries whose sender died.
        opts: {
          jobId: deliveryId,
          removeOnComplete: true,
          removeOnFail: true,
          ...telemetryOf(trace),
        },
      })),
    );
    return deliveries.map(() => undefined);
  }
}

interface QueuedDelivery {
  deliveryId: string;
  /** BullMQ's telemetry metadata of the dispatching call's trace; none with tracing off. */
  trace?: string;
}

function telemetryOf(trace: string | undefined): { telemetry?: { metadata: string } } {
  return trace ? { telemetry: { metadata: trace } } : {};
}
