import { Injectable, Logger } from '@nestjs/common';
import { ResultCache } from '../../cache/result-cache.service';
import { ProviderHealthService } from '../../providers/provider-health.service';
import { StorageService } from '../../storage/storage.service';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { CompletedCall } from '../task-step';
import { WaitingTasks } from '../waiting-tasks';
import { DONE, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/**
 * The provider finished: its outputs are ours (DESIGN decision 9), copied into storage before the task says
 * completed. Then the result goes to the cache, and a split task hears that one more of its parts is done.
 */
@Injectable()
export class StoreOutputs {
  private readonly logger = new Logger('StoreOutputs');

  constructor(
    private readonly health: ProviderHealthService,
    private readonly storage: StorageService,
    private readonly stateMachine: TaskStateMachine,
    private readonly cache: ResultCache,
    private readonly waiting: WaitingTasks,
  ) {}

  async run(ctx: StepContext, call: CompletedCall): Promise<StepOutcome> {
    try {
      ctx.run.signal.throwIfAborted();
      await this.store(ctx, call);
      return DONE;
    } catch (error) {
      return { kind: 'failed', error, provider: call.provider.name };
    } finally {
      // The outputs' local files (the provider's) go once they are stored, or dropped.
      await call.output
        .release?.()
        .catch((err: Error) => this.logger.warn({ taskId: ctx.task.id }, `output files not freed: ${err.message}`));
    }
  }

  private async store(
    { task, run, prefix, cacheKey }: StepContext,
    { provider, output, cost, latencyMs }: CompletedCall,
  ) {
    // The provider is done with it: its slot goes to the next task now, not after the outputs are copied.
    this.waiting.runNow(await this.health.record(provider.name, true, latencyMs, task.id).catch(() => undefined));
    await this.waiting.releaseTaskCaps(task);
    const files = output.artifacts.length
      ? await this.storage.saveArtifacts(task.id, output.artifacts, { signal: run.signal, prefix })
      : [];
    run.signal.throwIfAborted();
    const stored = { ...output.data, files, ...(output.sandbox ? { sandbox: true } : {}) };
    const done = await this.stateMachine.complete(task.id, { output: stored, provider: provider.name, cost });
    if (done?.parentId) {
      // The split task's progress is the share of its parts done (it only moves forward).
      await this.stateMachine
        .partsProgress(done.parentId)
        .catch((err: Error) => this.logger.warn({ taskId: task.id }, `progress of the split task: ${err.message}`));
    }
    if (cacheKey) {
      if (done) await this.cache.set(cacheKey, { output: stored, provider: provider.name });
      await this.waiting.releaseCacheLead(cacheKey, task.id);
    }
    if (!done) this.logger.log({ taskId: task.id }, 'finished after it was cancelled: result dropped');
  }
}
