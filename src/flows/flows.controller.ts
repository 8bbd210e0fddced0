import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as pause } from 'node:timers/promises';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { PageQueryDto } from '../common/page-query.dto';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { HeldConnections } from '../rate-limit/held-connections.service';
import { parsePreferWait } from '../tasks/task-waiter';
import { FlowCreateDto, FlowListResponseDto, FlowResponseDto } from './dto/flow.dto';
import {
  FlowRunCreateDto,
  FlowRunListDto,
  FlowRunResponseDto,
  FlowRunSearchDto,
  FlowRunStartedDto,
} from './dto/flow-run.dto';
import { FINISHED_RUN_STATUSES } from './entities/flow.entities';
import { FlowRunStream } from './flow-run-stream';
import { FlowRunsService } from './flow-runs.service';
import { FlowsService } from './flows.service';
import { NotFoundException } from '../common/domain-exception';

/** How often a `Prefer: wait` start looks at its run. */
const WAIT_POLL_MS = 100;

@ApiTags('flows')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@Controller('api/v1/flows')
export class FlowRunsController {
  constructor(
    private readonly runs: FlowRunsService,
    private readonly stream: FlowRunStream,
  ) {}

  @Get('runs')
  @ApiOperation({ summary: 'Your flow runs, newest first (flow_id, status, cursor)' })
  @ApiOkResponse({ type: FlowRunListDto })
  list(@CurrentUser() user: AuthUser, @Query() query: FlowRunSearchDto): Promise<FlowRunListDto> {
    return this.runs.list(user, query);
  }

  @Get('runs/:id')
  @ApiOperation({ summary: 'A flow run with its steps' })
  @ApiOkResponse({ type: FlowRunResponseDto })
  @ApiNotFoundResponse({ description: 'No such run of yours' })
  get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.get(user, id);
  }

  @Post('runs/:id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a live run (and the task its step waits on)' })
  @ApiOkResponse({ type: FlowRunResponseDto })
  @ApiConflictResponse({ description: 'The run has already finished' })
  cancel(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.cancel(user, id);
  }

  @Post('runs/:id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a failed run again from its failed step' })
  @ApiAcceptedResponse({ type: FlowRunResponseDto })
  @ApiConflictResponse({ description: 'The run is not failed' })
  retry(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.retry(user, id);
  }

  @Get('runs/:id/events')
  @ApiOperation({
    summary: "A live stream of the run's events (Server-Sent Events)",
    description: 'flow.started, flow.step.completed per step, then flow.completed, flow.failed or flow.cancelled.',
  })
  @ApiProduces('text/event-stream')
  async events(@CurrentUser() user: AuthUser, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    await this.stream.stream(user, id, reply);
  }
}

@ApiTags('flows')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@Controller('api/v1/flows')
export class FlowsController {
  constructor(
    private readonly flows: FlowsService,
    private readonly runs: FlowRunsService,
    private readonly idempotency: IdempotencyService,
    private readonly held: HeldConnections,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a flow' })
  @ApiCreatedResponse({ type: FlowResponseDto })
  @ApiBadRequestResponse({ description: 'Every problem of the definition, as steps[<i>].<field>: <message>' })
  create(@CurrentUser() user: AuthUser, @Body() dto: FlowCreateDto): Promise<FlowResponseDto> {
    return this.flows.create(user, dto);
  }

  @Get()
  @ApiOperation({ summary: 'Your flows, newest first' })
  @ApiOkResponse({ type: FlowListResponseDto })
  list(@CurrentUser() user: AuthUser, @Query() query: PageQueryDto): Promise<FlowListResponseDto> {
    return this.flows.list(user, query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A flow at its current version' })
  @ApiOkResponse({ type: FlowResponseDto })
  @ApiNotFoundResponse({ description: 'No such flow of yours' })
  get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowResponseDto> {
    return this.flows.get(user, id);
  }

  @Put(':id')
  @ApiOperation({ summary: 'Replace a flow: a new version (runs under way keep theirs)' })
  @ApiOkResponse({ type: FlowResponseDto })
  update(@CurrentUser() user: AuthUser, @Param('id') id: string, @Body() dto: FlowCreateDto): Promise<FlowResponseDto> {
    return this.flows.update(user, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a flow (its hook and schedule stop; its runs stay readable)' })
  @ApiNoContentResponse()
  async remove(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<void> {
    await this.flows.remove(user, id);
  }

  @Post(':id/runs')
  @HttpCode(202)
  @Idempotent()
  @ApiHeader({
    name: 'Prefer',
    required: false,
    description: 'wait or wait=N (N ≤ 60): answer with the run once it ends',
  })
  @ApiOperation({ summary: 'Start a run with `input` as its trigger' })
  @ApiAcceptedResponse({ type: FlowRunStartedDto })
  @ApiOkResponse({ type: FlowRunResponseDto, description: 'With Prefer: wait, the run ended in time' })
  start(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Body() dto: FlowRunCreateDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<FlowRunStartedDto | FlowRunResponseDto> {
    return this.idempotency.run(request, reply, user.id, async () => {
      const seconds = parsePreferWait(request.headers.prefer);
      const flow = await this.flows.findOwned(user, id);
      const started = await this.runs.start({ flowId: flow.id, trigger: dto.input ?? null, source: 'api' });
      if (!started) throw new NotFoundException('Flow', id);
      void reply.status(202);
      if (seconds === undefined) return { run_id: started.runId };
      // A wait holds one of the user's places; past the cap the run is answered at once, as a task's wait is.
      const place = await this.held.acquire(user.id);
      if (!('release' in place)) return { run_id: started.runId };
      try {
        void reply.header('preference-applied', `wait=${seconds}`);
        const deadline = Date.now() + seconds * 1000;
        for (;;) {
          const run = await this.runs.get(user, started.runId);
          if (FINISHED_RUN_STATUSES.includes(run.status)) {
            void reply.status(200);
            return { run_id: run.id, ...run };
          }
          if (Date.now() >= deadline) return { run_id: started.runId };
          await pause(WAIT_POLL_MS);
        }
      } finally {
        place.release();
      }
    });
  }
}
