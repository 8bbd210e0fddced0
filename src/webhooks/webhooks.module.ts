import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { WebhookProcessor } from './webhook.processor';
import { WebhookQueueModule } from './webhook-queue.module';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';
import { UnsignedWebhooksWarning } from './unsigned-webhooks.warning';

/** Webhook deliveries: the rows (written by task transitions), their queue, reading and replaying them. */
@Module({
  imports: [TasksModule, WebhookQueueModule],
  providers: [WebhooksService, UnsignedWebhooksWarning],
  exports: [WebhooksService, WebhookQueueModule],
})
export class WebhooksModule {}

/** The HTTP face, mounted by the API role. */
@Module({ imports: [WebhooksModule], controllers: [WebhooksController] })
export class WebhooksHttpModule {}

/** The queue's worker, run by the worker role (every role sends what it commits: see WebhookDispatch). */
@Module({ imports: [WebhooksModule], providers: [WebhookProcessor] })
export class WebhookDeliveryModule {}
