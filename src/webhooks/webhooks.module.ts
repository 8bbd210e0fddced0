import { Module } from '@nestjs/common';
import { providerByBackend } from '../common/backend-provider';
import { TasksModule } from '../tasks/tasks.module';
import { PostgresWebhookHostAttempts } from './postgres-webhook-host-attempts';
import { RedisWebhookHostAttempts } from './redis-webhook-host-attempts';
import { WebhookAttempts } from './webhook-attempts';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookProcessor } from './webhook.processor';
import { WebhookHostAttempts } from './webhook-host-attempts';
import { WebhookHostLimit } from './webhook-host-limit';
import { WebhookQueueModule } from './webhook-queue.module';
import { WebhookSender } from './webhook-sender';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';
import { UnsignedWebhooksWarning } from './unsigned-webhooks.warning';

/** Webhook deliveries: the rows (written by task transitions), their queue, reading and replaying them. */
@Module({
  imports: [TasksModule, WebhookQueueModule],
  providers: [WebhookDeliveriesRepository, WebhooksService, UnsignedWebhooksWarning],
  exports: [WebhookDeliveriesRepository, WebhooksService, WebhookQueueModule],
})
export class WebhooksModule {}

/** The HTTP face, mounted by the API role. */
@Module({ imports: [WebhooksModule], controllers: [WebhooksController] })
export class WebhooksHttpModule {}

/** The sender, run by the worker role. */
@Module({
  imports: [WebhooksModule],
  providers: [
    WebhookSender,
    providerByBackend(WebhookHostAttempts, { redis: RedisWebhookHostAttempts, postgres: PostgresWebhookHostAttempts }),
    WebhookHostLimit,
    WebhookAttempts,
    WebhookProcessor,
  ],
})
export class WebhookDeliveryModule {}
