import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ValidationException } from '../common/domain-exception';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import { DTO_BY_TYPE, validateAs } from '../tasks/dto/task-dto-by-type';
import { TaskEventType, TaskType } from '../tasks/task.enums';
import { parsePreferWait, TaskWaiter } from '../tasks/task-waiter';
import { AppConfig } from '../config/app-config';
import { TasksService } from '../tasks/tasks.service';
import {
  JobAccepted,
  jobAccepted,
  jobPaths,
  JobStatus,
  JobView,
  orchestratorAccepted,
  OrchestratorAccepted,
  OrchestratorJobView,
  toJobView,
  toOrchestratorView,
} from './video-jobs.mapper';

/** What a submit answers: accepted (202) in either API's words, or the finished job (200) with its id. */
type SubmitAnswer = OrchestratorAccepted | JobAccepted | (JobView & { jobId: string });

/**
 * The routes of the video API of the sources (CONTRACT.md, "The video API of the sources"), unchanged for both kinds
 * of their clients (n8n flows among them): thin adapters over the same tasks, so a job is also
 * `/api/v1/media/tasks/{id}`. What a submit answers is settled by what the caller sends:
 * - the route without `/async` and a body with `webhook_url` (the orchestrator's clients): 202 at once, in the
 *   orchestrator's words (QUEUED, `statusUrl: /jobs/{id}`); the webhook says how the job ended;
 * - `…/async` (the async video API's clients): 202 at once, in that API's words (IN_QUEUE, `/video/job/{id}`);
 * - the route without `/async` and no `webhook_url`: the async video API's synchronous mode, which waits for the job
 *   (up to SOURCES_SYNC_WAIT_SECONDS, 15 min) and answers it with its `jobId`, or the 202 if it still runs.
 * An explicit `Prefer: wait` (up to SOURCES_SYNC_WAIT_SECONDS) is honoured on any of them. `id_roteiro` travels in
 * the task's metadata.
 */
@ApiTags('video API of the sources')
@ApiBearerAuth()
@ApiSecurity('X-API-Key')
@Controller()
export class VideoJobsController {
  constructor(
    private readonly tasks: TasksService,
    private readonly waiter: TaskWaiter,
    private readonly idempotency: IdempotencyService,
    private readonly config: AppConfig,
  ) {}

  @Post(['video/img2vid', 'video/img2vid/async'])
  @Idempotent()
  @ApiOperation({ summary: 'One clip per image {id, image_url, duracao}' })
  @ApiHeader({ name: 'Prefer', required: false, description: 'wait=N (N ≤ SOURCES_SYNC_WAIT_SECONDS, 900)' })
  img2vid(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Img2Vid, body, {}, request, reply);
  }

  @Post(['video/caption', 'video/caption/async'])
  @Idempotent()
  @ApiOperation({ summary: 'Burn the SRT at url_srt into url_video' })
  caption(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, {}, request, reply);
  }

  @Post(['caption_style/segments', 'caption_style/segments/async'])
  @Idempotent()
  @ApiOperation({ summary: 'Captions in the "segments" style' })
  segments(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'segments' }, request, reply);
  }

  @Post(['caption_style/highlight', 'caption_style/highlight/async'])
  @Idempotent()
  @ApiOperation({ summary: 'Captions highlighted word by word' })
  highlight(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'highlight' }, request, reply);
  }

  @Post(['video/addaudio', 'video/addaudio/async'])
  @Idempotent()
  @ApiOperation({ summary: 'Mux url_audio into url_video' })
  addaudio(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.AddAudio, body, {}, request, reply);
  }

  @Get('jobs/:id')
  @ApiOperation({
    summary:
      "A job in the orchestrator's words: status QUEUED → SUBMITTED → PROCESSING → COMPLETED | FAILED | CANCELLED, progress 0–100, result, error",
  })
  async job(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<OrchestratorJobView> {
    const task = await this.tasks.get(user, id);
    // A split job's state is its parts': how many have run and how far.
    const parts = task.parts
      ? (await this.tasks.list(user, { parent_id: task.id, limit: 100, scope: user.isAdmin ? 'all' : 'own' })).data
      : [];
    return toOrchestratorView(task, parts);
  }

  @Get('video/job/:id')
  @ApiOperation({ summary: "A job in RunPod's words: status, delayTime and executionTime (ms), output, error" })
  async runpodJob(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<JobView> {
    return toJobView(await this.tasks.get(user, id));
  }

  @Get('video/job/:id/result')
  @ApiOperation({ summary: 'The result: 202 while the job runs, 200 once it has ended' })
  async result(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Record<string, unknown>> {
    const view = toJobView(await this.tasks.get(user, id));
    if (view.status === 'IN_QUEUE' || view.status === 'IN_PROGRESS') {
      void reply.status(202);
      return { jobId: view.id, status: view.status, ...jobPaths(view.id), message: 'Job not finished yet' };
    }
    return {
      jobId: view.id,
      status: view.status,
      result: view.output,
      error: view.error,
      delayTime: view.delayTime,
      executionTime: view.executionTime,
    };
  }

  @Post(['jobs/:id/cancel', 'job/:id/cancel'])
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a queued or running job (at RunPod too); 409 once it has ended' })
  async cancel(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
  ): Promise<{ jobId: string; status: JobStatus; message: string }> {
    const task = await this.tasks.cancel(user, id);
    return { jobId: task.id, status: toJobView(task).status, message: 'Job cancelled' };
  }

  private submit(
    user: AuthUser,
    type: TaskType,
    body: unknown,
    fixed: Record<string, unknown>,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ValidationException([{ field: 'body', message: 'the body must be a JSON object' }]);
    }
    const { id_roteiro: roteiro, ...fields } = body as Record<string, unknown>;
    const metadata =
      roteiro === undefined
        ? fields.metadata
        : { ...((fields.metadata as object | undefined) ?? {}), id_roteiro: roteiro };
    const { dto, problems } = validateAs(DTO_BY_TYPE[type], {
      ...fields,
      ...fixed,
      ...(metadata === undefined ? {} : { metadata }),
    });
    if (problems.length) throw new ValidationException(problems);
    // The sources' clients get one webhook, when the job ends, in the sources' own body.
    dto.webhook_events ??= [TaskEventType.Completed, TaskEventType.Failed, TaskEventType.Cancelled];
    const sources = { webhookFormat: 'sources' as const };
    return this.idempotency.run(request, reply, user.id, async (): Promise<SubmitAnswer> => {
      const isAsync = request.url.split('?')[0].endsWith('/async');
      const orchestrator = !isAsync && dto.webhook_url !== undefined;
      const accepted = (task: TaskResponseDto) => (orchestrator ? orchestratorAccepted(task) : jobAccepted(task));
      // The synchronous mode of the sources held the request until the job ended (up to 15 min by default).
      const max = this.config.sourcesSyncWaitSeconds;
      const seconds = parsePreferWait(request.headers.prefer, max) ?? (isAsync || orchestrator ? undefined : max);
      if (seconds === undefined) {
        void reply.status(202);
        return accepted(await this.tasks.create(user, type, dto, sources));
      }
      const { created, finished, waited } = await this.waiter.createAndWait(user.id, seconds, (id) =>
        this.tasks.create(user, type, dto, { ...sources, id }),
      );
      if (waited) void reply.header('preference-applied', `wait=${seconds}`);
      void reply.status(finished ? 200 : 202);
      if (!finished) return accepted(created);
      return { jobId: created.id, ...toJobView(await this.tasks.get(user, created.id)) };
    });
  }
}
