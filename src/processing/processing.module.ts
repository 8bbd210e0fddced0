import { Module } from '@nestjs/common';
import { BatchesModule } from '../batches/batches.module';
import { FlowsModule } from '../flows/flows.module';
import { StorageModule } from '../storage/storage.module';
import { TasksModule } from '../tasks/tasks.module';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { OutputRetention } from './output-retention';
import { ProviderCalls } from './provider-calls';
import { ReconcilerProcessor } from './reconciler.processor';
import { CollectParts } from './steps/collect-parts.step';
import { FailTask } from './steps/fail-task.step';
import { PollTask } from './steps/poll-task.step';
import { ServeFromCache } from './steps/serve-from-cache.step';
import { SplitTask } from './steps/split-task.step';
import { StoreOutputs } from './steps/store-outputs.step';
import { SubmitTask } from './steps/submit-task.step';
import { TimeOutTask } from './steps/time-out-task.step';
import { TaskProgress } from './task-progress';
import { TaskRuns } from './task-runs';
import { TaskWorker } from './task-worker';
import { TaskProcessor } from './task.processor';
import { WaitingTasks } from './waiting-tasks';

/** The worker half: the task worker with its steps, and the reconciler. Imported only where APP_ROLE runs workers. */
@Module({
  imports: [TasksModule, StorageModule, WebhooksModule, BatchesModule, FlowsModule],
  providers: [
    TaskWorker,
    TaskProcessor,
    TaskRuns,
    TaskProgress,
    ProviderCalls,
    WaitingTasks,
    TimeOutTask,
    SplitTask,
    CollectParts,
    ServeFromCache,
    SubmitTask,
    PollTask,
    StoreOutputs,
    FailTask,
    ReconcilerProcessor,
    OutputRetention,
  ],
  exports: [ReconcilerProcessor],
})
export class ProcessingModule {}
