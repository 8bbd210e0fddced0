import { Module } from '@nestjs/common';
import { BatchesModule } from '../batches/batches.module';
import { StorageModule } from '../storage/storage.module';
import { TasksModule } from '../tasks/tasks.module';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { FanOut } from './fan-out';
import { ReconcilerProcessor } from './reconciler.processor';
import { TaskProcessor } from './task.processor';

/** The worker half: task processor and reconciler. Imported only where APP_ROLE runs workers. */
@Module({
  imports: [TasksModule, StorageModule, WebhooksModule, BatchesModule],
  providers: [TaskProcessor, ReconcilerProcessor, FanOut],
  exports: [ReconcilerProcessor],
})
export class ProcessingModule {}
