import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as pause } from 'node:timers/promises';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { PageQueryDto } from '../common/page-query.dto';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { HeldConnections } from '../rate-limit/held-connections.service';
import { parsePreferWait } from '../tasks/task-waiter';
import {
  ApiAuthenticated,
  ApiErrors,
  ApiIdempotencyErrors,
  ApiJsonBodyErrors,
  IDEMPOTENT_BAD_REQUEST,
} from '../common/openapi';
import { FLOW_BODY_EXAMPLES, FlowCreateDto, FlowListResponseDto, FlowResponseDto } from './dto/flow.dto';
import {
  FlowRunCreateDto,
  FlowRunFinishedDto,
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

const DEFINITION_PROBLEMS = 'Every problem of the definition, as steps[<i>].<field>: <message> (`errors` lists them)';
const FlowIdParam = () => ApiParam({ name: 'id', format: 'uuid', description: 'The flow' });
const RunIdParam = () => ApiParam({ name: 'id', format: 'uuid', description: 'The run' });

@ApiTags('flow runs')
@ApiAuthenticated()
@Controller('api/v1/flows')
export class FlowRunsController {
  constructor(
    private readonly runs: FlowRunsService,
    private readonly stream: FlowRunStream,
  ) {}

  @Get('runs')
  @ApiOperation({ summary: 'Your flow runs, newest first (flow_id, status, cursor)' })
  @ApiOkResponse({ type: FlowRunListDto })
  @ApiErrors([400, 'A query parameter is malformed or out of range (`errors` names it)'])
  listFlowRuns(@CurrentUser() user: AuthUser, @Query() query: FlowRunSearchDto): Promise<FlowRunListDto> {
    return this.runs.list(user, query);
  }

  @Get('runs/:id')
  @RunIdParam()
  @ApiOperation({ summary: 'A flow run with its steps' })
  @ApiOkResponse({ type: FlowRunResponseDto })
  @ApiErrors([404, 'No such run of yours'])
  getFlowRun(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.get(user, id);
  }

  @Post('runs/:id/cancel')
  @HttpCode(200)
  @RunIdParam()
  @ApiOperation({ summary: 'Cancel a live run (and the task its step waits on)' })
  @ApiOkResponse({ type: FlowRunResponseDto, description: 'The run, cancelled' })
  @ApiErrors([404, 'No such run of yours'], [409, 'The run has already finished'])
  cancelFlowRun(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.cancel(user, id);
  }

  @Post('runs/:id/retry')
  @HttpCode(202)
  @RunIdParam()
  @ApiOperation({ summary: 'Run a failed run again from its failed step' })
  @ApiAcceptedResponse({ type: FlowRunResponseDto, description: 'The run, queued again' })
  @ApiErrors([404, 'No such run of yours'], [409, 'The run is not failed'])
  retryFlowRun(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowRunResponseDto> {
    return this.runs.retry(user, id);
  }

  @Get('runs/:id/events')
  @ApiOperation({
    summary: "A live stream of the run's events (Server-Sent Events)",
    description:
      'flow.started, flow.step.completed per step, then flow.completed, flow.failed or flow.cancelled; the stream ' +
      'closes after the last. Each event is `id: <sequence>`, `event: <type>`, `data: {event_type, sequence, …}`. ' +
      'A stream holds one of your HELD_CONNECTIONS_PER_USER places.',
  })
  @RunIdParam()
  @ApiOkResponse({
    description: 'Server-Sent Events, until the run ends',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        example:
          'retry: 2000\n\nid: 1\nevent: flow.started\ndata: {"event_type":"flow.started","sequence":1,"run_id":"7d9e2c1a-5b3f-4e8d-a6c2-9f1b0e4d3a55"}\n\n',
      },
    },
  })
  @ApiErrors(
    [404, 'No such run of yours'],
    [429, 'Past HELD_CONNECTIONS_PER_USER open streams and waits, or the rate limit'],
  )
  async streamFlowRunEvents(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    await this.stream.stream(user, id, reply);
  }
}

@ApiTags('flows')
@ApiAuthenticated()
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
  @ApiBody({ type: FlowCreateDto, examples: FLOW_BODY_EXAMPLES })
  @ApiCreatedResponse({ type: FlowResponseDto })
  @ApiJsonBodyErrors(DEFINITION_PROBLEMS)
  createFlow(@CurrentUser() user: AuthUser, @Body() dto: FlowCreateDto): Promise<FlowResponseDto> {
    return this.flows.create(user, dto);
  }

  @Get()
  @ApiOperation({ summary: 'Your flows, newest first' })
  @ApiOkResponse({ type: FlowListResponseDto })
  @ApiErrors([400, 'A query parameter is malformed or out of range (`errors` names it)'])
  listFlows(@CurrentUser() user: AuthUser, @Query() query: PageQueryDto): Promise<FlowListResponseDto> {
    return this.flows.list(user, query);
  }

  @Get(':id')
  @FlowIdParam()
  @ApiOperation({ summary: 'A flow at its current version' })
  @ApiOkResponse({ type: FlowResponseDto })
  @ApiErrors([404, 'No such flow of yours'])
  getFlow(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<FlowResponseDto> {
    return this.flows.get(user, id);
  }

  @Put(':id')
  @FlowIdParam()
  @ApiOperation({ summary: 'Replace a flow: a new version (runs under way keep theirs)' })
  @ApiBody({ type: FlowCreateDto, examples: FLOW_BODY_EXAMPLES })
  @ApiOkResponse({ type: FlowResponseDto, description: 'The flow at its new version' })
  @ApiJsonBodyErrors(DEFINITION_PROBLEMS)
  @ApiErrors([404, 'No such flow of yours'])
  updateFlow(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Body() dto: FlowCreateDto,
  ): Promise<FlowResponseDto> {
    return this.flows.update(user, id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @FlowIdParam()
  @ApiOperation({ summary: 'Delete a flow (its hook and schedule stop; its runs stay readable)' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiErrors([404, 'No such flow of yours'])
  async deleteFlow(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<void> {
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
  @FlowIdParam()
  @ApiOperation({ summary: 'Start a run with `input` as its trigger' })
  @ApiBody({
    type: FlowRunCreateDto,
    required: false,
    examples: { input: { summary: 'A trigger context', value: { input: { text: 'Hello there.' } } } },
  })
  @ApiAcceptedResponse({
    type: FlowRunStartedDto,
    description: 'The run is queued (or still running when the wait ended)',
  })
  @ApiOkResponse({ type: FlowRunFinishedDto, description: 'With Prefer: wait, the run ended in time' })
  @ApiJsonBodyErrors(IDEMPOTENT_BAD_REQUEST)
  @ApiIdempotencyErrors()
  @ApiErrors([404, 'No such flow of yours'])
  startFlowRun(
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
