import { isUuid } from '../common/uuid';
import { JobName } from '../queue/queue.constants';

/** `webhook.deliver`: send the first attempts of this delivery's task and URL, in sequence order. */
export interface WebhookDeliverData {
  deliveryId: string;
}

/**
 * `webhook.retry`: one round of attempts of a delivery that has been attempted before (a retry or a replay).
 * `attempts` is how many attempts the row had when the job was added; jobs added before it was carried have none.
 */
export interface WebhookRetryData {
  deliveryId: string;
  attempts?: number;
}

/** Job data may predate a deploy: check its shape when it is consumed. */
export function parseWebhookDeliverData(data: unknown): WebhookDeliverData {
  return { deliveryId: deliveryIdOf(data, JobName.WebhookDeliver) };
}

export function parseWebhookRetryData(data: unknown): WebhookRetryData {
  const deliveryId = deliveryIdOf(data, JobName.WebhookRetry);
  const attempts = (data as Record<string, unknown>).attempts;
  if (attempts === undefined) return { deliveryId };
  if (!Number.isInteger(attempts) || (attempts as number) < 1) {
    throw new Error(`invalid ${JobName.WebhookRetry} job data: ${JSON.stringify(data)}`);
  }
  return { deliveryId, attempts: attempts as number };
}

function deliveryIdOf(data: unknown, job: JobName): string {
  const value = (data as Record<string, unknown> | null)?.deliveryId;
  if (!isUuid(value)) throw new Error(`invalid ${job} job data: ${JSON.stringify(data)}`);
  return value;
}
