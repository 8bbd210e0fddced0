import { Module } from '@nestjs/common';
import { WebhookQueue } from './webhook-queue.service';

/**
 * The way onto the webhooks queue (registered with the other queues in QueueModule), apart from WebhooksModule so
 * that TasksModule, whose transitions write the delivery rows, can import it without importing itself back.
 */
@Module({ providers: [WebhookQueue], exports: [WebhookQueue] })
export class WebhookQueueModule {}
