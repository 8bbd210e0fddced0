import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { lineTicket, ProviderHealthService } from '../../providers/provider-health.service';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TaskEntity } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { taskRequestOf } from '../../tasks/task-input';
import { QUEUE_PRIORITY } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { planParts } from '../split-parts';
import { wholeTaskStep } from '../task-step';
import { DONE, next, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/**
 * Splits a large img2vid task into parts (DESIGN decision 5), once: each part a task of its own, sized to the
 * concurrency of the provider the task would run at. Too few images, one slot or no provider: it runs whole.
 */
@Injectable()
export class SplitTask {
  private readonly logger = new Logger('SplitTask');

  constructor(
    private readonly config: AppConfig,
    private readonly registry: ProviderRegistry,
    private readonly health: ProviderHealthService,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
  ) {}

  async run({ task, cacheKey }: StepContext): Promise<StepOutcome> {
    const plan = await this.plan(task);
    if (!plan) return next(wholeTaskStep(cacheKey));
    const { parts, provider } = plan;
    // False: the task is no longer processing (cancelled meanwhile), or was split into another number of parts.
    if (!(await this.tasks.split(task.id, parts))) return DONE;
    this.logger.log({ taskId: task.id, parts: parts.length }, `split into ${parts.length} parts`);
    for (const part of parts) this.stateMachine.announceCreated(part, null);
    // At a capped provider the parts join the tasks waiting for its slots now, before their jobs even run: a younger
    // task whose parts happen to ask first must not take the slots.
    if (this.registry.capOf(provider) !== undefined) {
      const ticket = lineTicket(QUEUE_PRIORITY[task.priority], task.createdAt);
      await this.health
        .join(
          provider,
          parts.map((p) => p.id),
          ticket,
        )
        .catch((err: Error) =>
          this.logger.warn({ taskId: task.id }, `parts not put on the provider's waiting list: ${err.message}`),
        );
    }
    return next({ kind: 'collect' });
  }

  /** The parts of the task and the provider they were sized for, or null when it runs whole. */
  private async plan(task: TaskEntity): Promise<{ parts: TaskEntity[]; provider: string } | null> {
    let best;
    try {
      [best] = await this.registry.route(taskRequestOf(task), task.options);
    } catch {
      return null; // no provider: the whole task fails with the router's reason
    }
    if (!best) return null;
    const capacity = this.registry.capOf(best.name) ?? this.config.fanout.uncappedParts;
    const parts = planParts(task, capacity, this.config.fanout.partMinImages);
    return parts.length ? { parts, provider: best.name } : null;
  }
}
