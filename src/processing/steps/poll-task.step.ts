import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { ProviderJobRef } from '../../providers/provider.port';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TaskEntity } from '../../tasks/entities/task.entity';
import { TasksRepository } from '../../tasks/tasks.repository';
import { ProviderCalls } from '../provider-calls';
import { wholeTaskStep } from '../task-step';
import { later, next, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/**
 * A provider job is stored on the task: ask the provider how it is going. Still running: note its progress and its
 * place in the provider's queue, and look again later; done: store its outputs.
 */
@Injectable()
export class PollTask {
  constructor(
    private readonly config: AppConfig,
    private readonly registry: ProviderRegistry,
    private readonly calls: ProviderCalls,
    private readonly tasks: TasksRepository,
  ) {}

  async run(ctx: StepContext, providerName: string, providerJob: ProviderJobRef): Promise<StepOutcome> {
    const provider = this.registry.get(providerName);
    // The provider is no longer configured here: the task starts again, at a provider that is.
    if (!provider) return next(wholeTaskStep(ctx.cacheKey));
    try {
      const outcome = await this.calls.timed(provider, () => provider.poll(ctx.call, providerJob));
      if (outcome.kind === 'completed') return next({ kind: 'store', call: { provider, ...outcome } });
      ctx.run.signal.throwIfAborted();
      if (outcome.progress !== undefined) ctx.call.reportProgress(outcome.progress);
      await this.noteQueuePosition(ctx.task, outcome.queuePosition);
      return later(outcome.pollAfterMs * this.config.providerPollScale);
    } catch (error) {
      return { kind: 'failed', error, provider: provider.name };
    }
  }

  /** The job's place in its provider's queue, written only when it changed (it is read from the stored job). */
  private async noteQueuePosition(task: TaskEntity, position: number | undefined): Promise<void> {
    const known = task.providerJob?.queue_position;
    if ((position ?? null) === (typeof known === 'number' ? known : null)) return;
    await this.tasks.saveProviderQueuePosition(task.id, position ?? null);
  }
}
