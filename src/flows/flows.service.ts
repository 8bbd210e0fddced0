import { Inject, Injectable, Optional } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { AuthUser } from '../auth/auth.types';
import { FieldProblem, NotFoundException, ValidationException } from '../common/domain-exception';
import { isUuid } from '../common/uuid';
import { UrlGuard } from '../security/url-guard';
import { encodeCursor, pageOf } from '../tasks/task.mapper';
import { TaskPriority } from '../tasks/task.enums';
import { FlowListResponseDto, FlowCreateDto, FlowResponseDto } from './dto/flow.dto';
import { FlowEntity, FlowVersionEntity } from './entities/flow.entities';
import { publicSteps, publicTrigger, stepsProblems, triggerProblems } from './flow-definition';
import { FlowSchedules, FlowTrigger } from './flow-ports';
import { FLOW_STEP_EXECUTORS, FlowStep, FlowStepExecutor } from './flow-step.types';
import { FlowsRepository } from './flows.repository';
import { PageQueryDto } from '../common/page-query.dto';

/** How many upcoming ticks a scheduled flow shows. */
const NEXT_TICKS = 5;

/** Flow definitions: create, read, list, new versions, delete. */
@Injectable()
export class FlowsService {
  constructor(
    private readonly repo: FlowsRepository,
    @Inject(FLOW_STEP_EXECUTORS) private readonly executors: FlowStepExecutor[],
    private readonly guard: UrlGuard,
    @Optional() private readonly schedules?: FlowSchedules,
  ) {}

  async create(user: AuthUser, dto: FlowCreateDto): Promise<FlowResponseDto> {
    const trigger = this.validate(dto);
    const now = new Date();
    const flow = Object.assign(new FlowEntity(), {
      id: randomUUID(),
      userId: user.id,
      name: dto.name,
      description: dto.description ?? null,
      version: 1,
      trigger,
      hookId: trigger.type === 'webhook' ? newHookId() : null,
      priority: dto.priority ?? TaskPriority.Medium,
      webhookUrl: dto.webhook_url ?? null,
      webhookEvents: dto.webhook_events ?? null,
      createdAt: now,
      updatedAt: now,
      deletedAt: null,
    } satisfies FlowEntity);
    const version = Object.assign(new FlowVersionEntity(), {
      flowId: flow.id,
      version: 1,
      steps: dto.steps as unknown as FlowStep[],
      trigger,
      createdAt: now,
    } satisfies FlowVersionEntity);
    await this.repo.insertFlow(flow, version);
    await this.schedules?.sync(flow.id, trigger);
    return this.toResponse(flow, version.steps);
  }

  async get(user: AuthUser, id: string): Promise<FlowResponseDto> {
    const flow = await this.findOwned(user, id);
    const version = await this.repo.findVersion(flow.id, flow.version);
    return this.toResponse(flow, version?.steps ?? []);
  }

  async list(user: AuthUser, query: PageQueryDto): Promise<FlowListResponseDto> {
    const { userId, after, limit } = pageOf(user, query);
    const { rows, hasMore } = await this.repo.listFlows({
      userId,
      limit,
      after,
    });
    const data: FlowResponseDto[] = [];
    for (const flow of rows) {
      const version = await this.repo.findVersion(flow.id, flow.version);
      data.push(this.toResponse(flow, version?.steps ?? []));
    }
    return { data, next_cursor: hasMore ? encodeCursor(rows[rows.length - 1]) : null };
  }

  /** A new version: runs under way keep theirs. A webhook trigger keeps its hook id (and gets one if it had none). */
  async update(user: AuthUser, id: string, dto: FlowCreateDto): Promise<FlowResponseDto> {
    const current = await this.findOwned(user, id);
    const trigger = this.validate(dto);
    const next = Object.assign(new FlowEntity(), current, {
      name: dto.name,
      description: dto.description ?? null,
      trigger,
      hookId: trigger.type === 'webhook' ? (current.hookId ?? newHookId()) : null,
      priority: dto.priority ?? TaskPriority.Medium,
      webhookUrl: dto.webhook_url ?? null,
      webhookEvents: dto.webhook_events ?? null,
    });
    const updated = await this.repo.updateFlow(next, dto.steps);
    if (!updated) throw new NotFoundException('Flow', id);
    await this.schedules?.sync(updated.id, trigger);
    return this.toResponse(updated, dto.steps as unknown as FlowStep[]);
  }

  /** Soft delete: its hook answers 404 and its schedule stops; its runs stay readable. */
  async remove(user: AuthUser, id: string): Promise<void> {
    const flow = await this.findOwned(user, id);
    if (!(await this.repo.deleteFlow(flow.id))) throw new NotFoundException('Flow', id);
    await this.schedules?.remove(flow.id);
  }

  async findOwned(user: AuthUser, id: string): Promise<FlowEntity> {
    const flow = isUuid(id) ? await this.repo.findFlow(id, user.isAdmin ? undefined : user.id) : null;
    if (!flow) throw new NotFoundException('Flow', id);
    return flow;
  }

  /** Every problem of the definition at once (400), or the trigger to store. */
  private validate(dto: FlowCreateDto): FlowTrigger {
    const problems: string[] = [...triggerProblems(dto.trigger)];
    if (problems.length === 0 && this.schedules)
      problems.push(...this.schedules.problems(dto.trigger as unknown as FlowTrigger));
    problems.push(...stepsProblems(dto.steps, this.executors));
    if (dto.webhook_url !== undefined) {
      const problem = this.guard.problem(dto.webhook_url);
      if (problem) problems.push(`webhook_url: webhook_url ${problem}`);
    }
    if (problems.length) throw new ValidationException(problems.map(toFieldProblem));
    return dto.trigger as unknown as FlowTrigger;
  }

  private toResponse(flow: FlowEntity, steps: FlowStep[]): FlowResponseDto {
    let nextTicks: string[] | undefined;
    if (flow.trigger.type === 'schedule' && this.schedules) {
      try {
        nextTicks = this.schedules.nextTicks(flow.trigger, NEXT_TICKS);
      } catch {
        nextTicks = [];
      }
    }
    return {
      id: flow.id,
      version: flow.version,
      ...(flow.hookId ? { hook_url: `/hooks/${flow.hookId}` } : {}),
      name: flow.name,
      description: flow.description,
      trigger: publicTrigger(flow.trigger),
      steps: publicSteps(steps),
      priority: flow.priority,
      webhook_url: flow.webhookUrl,
      webhook_events: flow.webhookEvents,
      ...(nextTicks ? { next_ticks: nextTicks } : {}),
      created_at: flow.createdAt.toISOString(),
      updated_at: flow.updatedAt.toISOString(),
    };
  }
}

/** 24 random bytes, base64url: a hook id nobody can guess. */
function newHookId(): string {
  return randomBytes(24).toString('base64url');
}

/** "steps[2].then: message" → field "steps[2].then", the whole line as the message. */
function toFieldProblem(line: string): FieldProblem {
  const colon = line.indexOf(': ');
  return { field: colon > 0 ? line.slice(0, colon) : 'steps', message: line };
}
