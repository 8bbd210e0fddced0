import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookProcessor } from './webhook.processor';
import { WebhookHostLimit } from './webhook-host-limit';
import { WebhookSender } from './webhook-sender';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';
import { UnsignedWebhooksWarning } from './unsigned-webhooks.warning';

/** Webhook deliveries: the rows (written by task transitions), reading and replaying them. */
@Module({
  imports: [TasksModule],
  providers: [WebhookDeliveriesRepository, WebhooksService, UnsignedWebhooksWarning],
  exports: [WebhookDeliveriesRepository, WebhooksService],
})
export class WebhooksModule {}

/** The HTTP face, mounted by the API role. */
@Module({ imports: [WebhooksModule], controllers: [WebhooksController] })
export class WebhooksHttpModule {}

/** The sender, run by the worker role. */
@Module({ imports: [WebhooksModule], providers: [WebhookSender, WebhookHostLimit, WebhookProcessor] })
export class WebhookDeliveryModule {}
