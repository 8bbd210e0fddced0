import { Module } from '@nestjs/common';
import { providerByBackend } from '../common/backend-provider';
import { PostgresWebhookHostAttempts } from './postgres-webhook-host-attempts';
import { RedisWebhookHostAttempts } from './redis-webhook-host-attempts';
import { WebhookAttempts } from './webhook-attempts';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookDispatch } from './webhook-dispatch';
import { WebhookHostAttempts } from './webhook-host-attempts';
import { WebhookHostLimit } from './webhook-host-limit';
import { WebhookQueue } from './webhook-queue.service';
import { WebhookSender } from './webhook-sender';

/**
 * How a committed delivery leaves: sent at once by the committing process (WebhookDispatch), or through the webhooks
 * queue (registered with the other queues in QueueModule). Every role loads it, since API processes commit events
 * too; apart from WebhooksModule so that TasksModule, whose transitions write the delivery rows, can import it
 * without importing itself back.
 */
@Module({
  providers: [
    WebhookQueue,
    WebhookDeliveriesRepository,
    WebhookSender,
    providerByBackend(WebhookHostAttempts, { redis: RedisWebhookHostAttempts, postgres: PostgresWebhookHostAttempts }),
    WebhookHostLimit,
    WebhookAttempts,
    WebhookDispatch,
  ],
  exports: [WebhookQueue, WebhookDispatch, WebhookAttempts, WebhookDeliveriesRepository],
})
export class WebhookQueueModule {}
