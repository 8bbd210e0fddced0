import { Module } from '@nestjs/common';
import { BatchesModule } from '../batches/batches.module';
import { CreditsModule } from '../credits/credits.module';
import { ProvidersModule } from '../providers/providers.module';
import { StorageModule } from '../storage/storage.module';
import { WebhookQueueModule } from '../webhooks/webhook-queue.module';
import { TaskStateMachine } from './task-state-machine';
import { TasksRepository } from './tasks.repository';
import { TasksService } from './tasks.service';

/** Tasks: records, the state machine and the service. The HTTP controller is added by the API role only. */
@Module({
  imports: [ProvidersModule, StorageModule, BatchesModule, WebhookQueueModule, CreditsModule],
  providers: [TasksRepository, TaskStateMachine, TasksService],
  exports: [TasksRepository, TaskStateMachine, TasksService, ProvidersModule],
})
export class TasksModule {}
