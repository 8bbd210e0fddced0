import { Global, Injectable, Module, OnModuleInit } from '@nestjs/common';
import { SqlClient } from '../database/sql-client';
import { TasksModule } from '../tasks/tasks.module';
import { ConditionExecutor } from './executors/condition.executor';
import { DelayExecutor } from './executors/delay.executor';
import { TaskExecutor } from './executors/task.executor';
import { FlowEngine } from './flow-engine';
import { FlowEvent, FlowEvents } from './flow-events';
import { FlowJobs } from './flow-jobs';
import { FlowHookDirectory, FlowRunStarter } from './flow-ports';
import { FlowRunStream } from './flow-run-stream';
import { FlowHooks, FlowRunsService } from './flow-runs.service';
import { FLOW_STEP_EXECUTORS, FlowStepExecutor, FlowStepKind } from './flow-step.types';
import { FlowTaskWaker } from './flow-task-waker';
import { FlowWorker } from './flow-worker';
import { FlowRunsController, FlowsController } from './flows.controller';
import { FlowsRepository } from './flows.repository';
import { FlowsService } from './flows.service';
import { FlowOutboundModule } from './outbound/flow-outbound.module';
import { FlowWebhooks } from './outbound/flow-webhooks';
import { HttpStepExecutor } from './outbound/http-step.executor';
import { NotifyStepExecutor } from './outbound/notify-step.executor';

/**
 * Sends each run event to its flow's `webhook_url` (when set and its `webhook_events` let it through): a delivery row
 * written just after the transition's commit, then the webhooks queue, as task webhooks go. The rows of one run are
 * written one after the other, in the order of its events, and numbered so: its line goes out in that order.
 */
@Injectable()
export class FlowEventWebhooks implements OnModuleInit {
  /** The last write under way per run: the next event of the run waits for it. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly events: FlowEvents,
    private readonly flows: FlowsRepository,
    private readonly webhooks: FlowWebhooks,
    private readonly sql: SqlClient,
  ) {}

  onModuleInit(): void {
    this.events.addDeliverer((event) => {
      const previous = this.writing.get(event.runId) ?? Promise.resolve();
      const write = previous.catch(() => undefined).then(() => this.write(event));
      const settled = write.catch(() => undefined);
      this.writing.set(event.runId, settled);
      void settled.then(() => {
        if (this.writing.get(event.runId) === settled) this.writing.delete(event.runId);
      });
      return write;
    });
  }

  private async write(event: FlowEvent): Promise<void> {
    const flow = await this.flows.findFlowForRun(event.flowId);
    if (!flow?.webhookUrl) return;
    const step = event.step
      ? {
          id: event.step.stepId,
          kind: event.step.kind as FlowStepKind,
          status: event.step.status,
          output: event.step.output,
        }
      : undefined;
    const id = await this.sql.transaction((tx) => this.webhooks.deliver(tx, event.run, flow, event.type, step));
    this.webhooks.dispatch([id]);
  }
}

/**
 * Flows in every role: definitions, runs (FlowRunStarter, FlowHookDirectory for the triggers), events, and the wake-up
 * of steps waiting on a task. Each kind's executor is one entry of FLOW_STEP_EXECUTORS (add a kind's here).
 */
@Global()
@Module({
  imports: [TasksModule, FlowOutboundModule],
  providers: [
    FlowsRepository,
    FlowJobs,
    FlowEvents,
    FlowsService,
    FlowRunsService,
    FlowHooks,
    FlowTaskWaker,
    { provide: FlowRunStarter, useExisting: FlowRunsService },
    { provide: FlowHookDirectory, useExisting: FlowHooks },
    TaskExecutor,
    ConditionExecutor,
    DelayExecutor,
    FlowEventWebhooks,
    {
      provide: FLOW_STEP_EXECUTORS,
      inject: [TaskExecutor, ConditionExecutor, DelayExecutor, HttpStepExecutor, NotifyStepExecutor],
      useFactory: (...executors: FlowStepExecutor[]) => executors,
    },
  ],
  exports: [
    FlowsRepository,
    FlowJobs,
    FlowEvents,
    FlowsService,
    FlowRunsService,
    FlowRunStarter,
    FlowHookDirectory,
    FLOW_STEP_EXECUTORS,
  ],
})
export class FlowsModule {}

/** The routes of flows and their runs (API role). */
@Module({
  imports: [FlowsModule],
  controllers: [FlowsController, FlowRunsController],
  providers: [FlowRunStream],
})
export class FlowsHttpModule {}

/** The flows queue's worker and the step engine (worker roles). */
@Module({
  imports: [FlowsModule, TasksModule],
  providers: [FlowEngine, FlowWorker],
  exports: [FlowWorker],
})
export class FlowsWorkerModule {}
