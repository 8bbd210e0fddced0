import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuthUser } from '../auth/auth.types';
import { DomainException, ErrorCode, NotFoundException } from '../common/domain-exception';
import { isUuid } from '../common/uuid';
import { TaskSignalsService } from '../queue/task-signals.service';
import { encodeCursor, pageOf } from '../tasks/task.mapper';
import { TasksService } from '../tasks/tasks.service';
import { TaskPriority } from '../tasks/task.enums';
import { FlowRunEntity, FlowStepEntity } from './entities/flow.entities';
import { FlowEvents } from './flow-events';
import { FlowJobs } from './flow-jobs';
import { FlowHookDirectory, FlowRunStarter, HookTarget, StartRun } from './flow-ports';
import { FlowsRepository } from './flows.repository';
import { FlowRunListDto, FlowRunResponseDto, FlowRunSearchDto } from './dto/flow-run.dto';

/** Starts runs (for every trigger), and the runs API: read, list, cancel, retry. */
@Injectable()
export class FlowRunsService extends FlowRunStarter {
  private readonly logger = new Logger('FlowRuns');

  constructor(
    private readonly repo: FlowsRepository,
    private readonly jobs: FlowJobs,
    private readonly events: FlowEvents,
    private readonly tasks: TasksService,
    private readonly signals: TaskSignalsService,
  ) {
    super();
  }

  async start(request: StartRun): Promise<{ runId: string; created: boolean } | null> {
    const flow = await this.repo.findFlowForRun(request.flowId);
    if (!flow) return null;
    const version = await this.repo.findVersion(flow.id, flow.version);
    if (!version || version.steps.length === 0) return null;
    const now = new Date();
    const first = version.steps[0];
    const run = Object.assign(new FlowRunEntity(), {
      id: randomUUID(),
      flowId: flow.id,
      version: flow.version,
      userId: flow.userId,
      status: 'queued',
      trigger: request.trigger ?? null,
      source: request.source,
      dedupeKey: request.dedupeKey ?? null,
      currentStep: first.id,
      round: 1,
      error: null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
    } satisfies FlowRunEntity);
    const step = Object.assign(new FlowStepEntity(), {
      runId: run.id,
      stepId: first.id,
      kind: first.kind,
      status: 'pending',
      attempts: 0,
      output: null,
      response: null,
      error: null,
      state: null,
      taskId: null,
      wakeAt: null,
      startedAt: null,
      finishedAt: null,
    } satisfies FlowStepEntity);
    const result = await this.repo.insertRun(run, step);
    if (result.created) await this.jobs.addOrDefer(run.id, first.id, 1, flow.priority);
    return result;
  }

  async get(user: AuthUser, id: string): Promise<FlowRunResponseDto> {
    const run = await this.findOwned(user, id);
    return toRunResponse(run, await this.repo.stepsOf(run.id));
  }

  /** The run as stored, when the user may see it (else 404). */
  async findOwned(user: AuthUser, id: string): Promise<FlowRunEntity> {
    const run = isUuid(id) ? await this.repo.findRun(id, user.isAdmin ? undefined : user.id) : null;
    if (!run) throw new NotFoundException('Flow run', id);
    return run;
  }

  async list(user: AuthUser, query: FlowRunSearchDto): Promise<FlowRunListDto> {
    const { userId, after, limit } = pageOf(user, query);
    const { rows, hasMore } = await this.repo.listRuns({
      userId,
      flowId: query.flow_id,
      status: query.status,
      limit,
      after,
    });
    return {
      data: rows.map((r) => toRunResponse(r, null)),
      next_cursor: hasMore ? encodeCursor(rows[rows.length - 1]) : null,
    };
  }

  /** Cancels a live run: its unfinished steps too, the task a step waits on, and a step running somewhere. */
  async cancel(user: AuthUser, id: string): Promise<FlowRunResponseDto> {
    const run = await this.findOwned(user, id);
    const cancelled = await this.repo.cancelRun(run.id);
    if (!cancelled) {
      throw new DomainException(
        ErrorCode.InvalidTransition,
        `flow run ${id} is ${run.status}: only a live run can be cancelled`,
      );
    }
    for (const step of cancelled.steps) {
      if (step.taskId) {
        await this.tasks
          .cancel({ id: run.userId, roles: [], isAdmin: false }, step.taskId)
          .catch((err: Error) => this.logger.debug(`task ${step.taskId} not cancelled: ${err.message}`));
      }
      await this.jobs.remove(run.id, step.stepId, cancelled.run.round);
    }
    // A step running in some worker stops (the run's id on the cancel channel aborts its signal).
    await this.signals.publishCancel(run.id);
    this.events.publish(cancelled.run, 'flow.cancelled');
    return this.get(user, id);
  }

  /** A failed run goes again from its failed step (a new round: the step gets a new job and a new task). */
  async retry(user: AuthUser, id: string): Promise<FlowRunResponseDto> {
    const run = await this.findOwned(user, id);
    const retried = await this.repo.retryRun(run.id);
    if (!retried) {
      throw new DomainException(
        ErrorCode.InvalidTransition,
        `flow run ${id} is ${run.status}: only a failed run can be retried`,
      );
    }
    const flow = await this.repo.findFlow(run.flowId);
    await this.jobs.addOrDefer(retried.id, retried.currentStep!, retried.round, flow?.priority ?? TaskPriority.Medium);
    return this.get(user, id);
  }
}

/** Finds inbound hooks' flows by the hook id. */
@Injectable()
export class FlowHooks extends FlowHookDirectory {
  constructor(private readonly repo: FlowsRepository) {
    super();
  }

  async find(hookId: string): Promise<HookTarget | null> {
    const flow = await this.repo.findFlowByHook(hookId);
    if (!flow || flow.trigger.type !== 'webhook') return null;
    return {
      flowId: flow.id,
      userId: flow.userId,
      secret: flow.trigger.secret ?? null,
      requireKey: flow.trigger.require_api_key === true,
      eventIdHeader: flow.trigger.event_id_header ?? null,
    };
  }
}

export function toRunResponse(run: FlowRunEntity, steps: FlowStepEntity[] | null): FlowRunResponseDto {
  return {
    id: run.id,
    flow_id: run.flowId,
    version: run.version,
    status: run.status,
    source: run.source,
    current_step: run.currentStep,
    round: run.round,
    error: run.error,
    trigger: run.trigger,
    ...(steps
      ? {
          steps: steps.map((s) => ({
            id: s.stepId,
            kind: s.kind,
            status: s.status,
            attempts: s.attempts,
            output: s.output ?? null,
            response: s.response ?? null,
            error: s.error,
            task_id: s.taskId,
            wake_at: s.wakeAt?.toISOString() ?? null,
            started_at: s.startedAt?.toISOString() ?? null,
            finished_at: s.finishedAt?.toISOString() ?? null,
          })),
        }
      : {}),
    created_at: run.createdAt.toISOString(),
    started_at: run.startedAt?.toISOString() ?? null,
    finished_at: run.finishedAt?.toISOString() ?? null,
  };
}
