import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Subscription } from 'rxjs';
import { TaskEventsService } from '../events/task-events.service';
import { isTerminal } from '../tasks/task.enums';
import { FlowJobs } from './flow-jobs';
import { FlowsRepository } from './flows.repository';

/**
 * A task made by a run's step ended (in this process): the step's delayed job runs now instead of at its next look.
 * Every process hears its own transitions (the task worker's completions, the API's cancels).
 */
@Injectable()
export class FlowTaskWaker implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('FlowTaskWaker');
  private subscription?: Subscription;

  constructor(
    private readonly taskEvents: TaskEventsService,
    private readonly repo: FlowsRepository,
    private readonly jobs: FlowJobs,
  ) {}

  onModuleInit(): void {
    this.subscription = this.taskEvents.events$.subscribe((event) => {
      const { task } = event;
      if (!task.flowRunId || !task.flowStepId || !isTerminal(task.status)) return;
      void this.wake(task.flowRunId, task.flowStepId).catch((err: Error) =>
        this.logger.warn({ runId: task.flowRunId, taskId: task.id }, `step not woken: ${err.message}`),
      );
    });
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  private async wake(runId: string, stepId: string): Promise<void> {
    const run = await this.repo.findRun(runId);
    if (!run) return;
    await this.jobs.promote(runId, stepId, run.round);
  }
}
