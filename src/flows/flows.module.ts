import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { ConditionExecutor } from './executors/condition.executor';
import { DelayExecutor } from './executors/delay.executor';
import { TaskExecutor } from './executors/task.executor';
import { FlowEngine } from './flow-engine';
import { FlowEvents } from './flow-events';
import { FlowJobs } from './flow-jobs';
import { FlowHookDirectory, FlowRunStarter } from './flow-ports';
import { FlowRunStream } from './flow-run-stream';
import { FlowHooks, FlowRunsService } from './flow-runs.service';
import { FLOW_STEP_EXECUTORS, FlowStepExecutor } from './flow-step.types';
import { FlowTaskWaker } from './flow-task-waker';
import { FlowWorker } from './flow-worker';
import { FlowRunsController, FlowsController } from './flows.controller';
import { FlowsRepository } from './flows.repository';
import { FlowsService } from './flows.service';

/**
 * Flows in every role: definitions, runs (FlowRunStarter, FlowHookDirectory for the triggers), events, and the wake-up
 * of steps waiting on a task. Each kind's executor is one entry of FLOW_STEP_EXECUTORS (add a kind's here).
 */
@Module({
  imports: [TasksModule],
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
    {
      provide: FLOW_STEP_EXECUTORS,
      inject: [TaskExecutor, ConditionExecutor, DelayExecutor],
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
