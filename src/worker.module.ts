import { Module } from '@nestjs/common';
import { FlowsWorkerModule } from './flows/flows.module';
import { ProcessingModule } from './processing/processing.module';
import { WebhookDeliveryModule } from './webhooks/webhooks.module';

/**
 * The processors: tasks, webhook deliveries and flow steps (APP_ROLE=worker and all). AppModule imports this file only
 * in those roles, so the API role never loads the provider adapters, their media tools or the senders.
 */
@Module({ imports: [ProcessingModule, WebhookDeliveryModule, FlowsWorkerModule] })
export class WorkerModule {}
