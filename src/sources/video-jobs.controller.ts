import { applyDecorators, Body, Controller, Get, HttpCode, Param, Post, Req, Res, Type } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiExtraModels,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ValidationException } from '../common/domain-exception';
import {
  ApiAuthenticated,
  ApiErrors,
  ApiIdempotencyErrors,
  ApiJsonBodyErrors,
  IDEMPOTENT_BAD_REQUEST,
} from '../common/openapi';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import { DTO_BY_TYPE, validateAs } from '../tasks/dto/task-dto-by-type';
import { TaskEventType, TaskType } from '../tasks/task.enums';
import { parsePreferWait, TaskWaiter } from '../tasks/task-waiter';
import { AppConfig } from '../config/app-config';
import { TasksService } from '../tasks/tasks.service';
import {
  OrchestratorJobAcceptedDto,
  OrchestratorJobDto,
  SOURCES_BODY_EXAMPLES,
  SourcesAddAudioBodyDto,
  SourcesCaptionBodyDto,
  SourcesCaptionStyleBodyDto,
  SourcesImg2VidBodyDto,
  VideoJobAcceptedDto,
  VideoJobCancelledDto,
  VideoJobDto,
  VideoJobFinishedDto,
  VideoJobPendingDto,
  VideoJobResultDto,
} from './dto/video-jobs.dto';
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

type BodyExamples = Record<string, { summary: string; value: unknown }>;

/**
 * The documentation of a submit route. `sync`: the route without `/async`, whose answer waits for the job unless the
 * body has a webhook_url; `async`: the `/async` route, which answers at once unless `Prefer: wait` says otherwise.
 */
function SubmitRoute(mode: 'sync' | 'async', summary: string, body: Type<unknown>, examples: BodyExamples) {
  const accepted =
    mode === 'sync'
      ? ApiAcceptedResponse({
          description:
            "With webhook_url: queued, in the orchestrator's words (QUEUED). Without: the job still ran when the " +
            "wait ended (SOURCES_SYNC_WAIT_SECONDS) or the process is shutting down, in the async API's words (IN_QUEUE)",
          schema: {
            oneOf: [{ $ref: getSchemaPath(OrchestratorJobAcceptedDto) }, { $ref: getSchemaPath(VideoJobAcceptedDto) }],
            discriminator: {
              propertyName: 'status',
              mapping: {
                QUEUED: getSchemaPath(OrchestratorJobAcceptedDto),
                IN_QUEUE: getSchemaPath(VideoJobAcceptedDto),
              },
            },
          },
        })
      : ApiAcceptedResponse({
          type: VideoJobAcceptedDto,
          description: 'Queued (or still running when a Prefer: wait ended)',
        });
  const finished = ApiOkResponse({
    type: VideoJobFinishedDto,
    description:
      mode === 'sync'
        ? 'Without webhook_url (or with Prefer: wait): the job ended within the wait, as GET /video/job/{id} shows it'
        : 'With Prefer: wait: the job ended within the wait, as GET /video/job/{id} shows it',
  });
  // No @HttpCode: the handler sets 202 or 200 itself (an idempotent replay, the status it recorded).
  return applyDecorators(
    Idempotent(),
    ApiOperation({
      summary: mode === 'sync' ? summary : `${summary} (answers at once)`,
      description:
        mode === 'sync'
          ? "A body with webhook_url (the orchestrator's clients): 202 at once, the webhook tells how the job ended. " +
            'Without: the answer waits for the job (up to SOURCES_SYNC_WAIT_SECONDS, 15 min) and is the finished ' +
            'job, or the 202 of /async if it still runs. The job is also /api/v1/media/tasks/{jobId}.'
          : 'The async video API: 202 at once with the links to poll; webhook_url, when given, tells how the job ended. ' +
            'The job is also /api/v1/media/tasks/{jobId}.',
    }),
    ApiHeader({
      name: 'Prefer',
      required: false,
      description: 'wait=N (N ≤ SOURCES_SYNC_WAIT_SECONDS, 900): answer with the finished job if it ends within N s',
      schema: { type: 'string', example: 'wait=60' },
    }),
    ApiBody({ type: body, examples }),
    accepted,
    finished,
    ApiJsonBodyErrors(IDEMPOTENT_BAD_REQUEST),
    ApiIdempotencyErrors(),
    ApiErrors(
      [403, 'An API key without the scope `tasks`, or too few credits for the job (CREDITS_ENABLED)'],
      [429, 'Too many requests (RATE_LIMIT_PER_MINUTE) or too many unfinished tasks (QUOTA_MAX_ACTIVE_TASKS)'],
    ),
  );
}

const JobIdParam = () => ApiParam({ name: 'id', format: 'uuid', description: 'The job (a task id)' });
const ApiCancelJob = () =>
  applyDecorators(
    HttpCode(200),
    JobIdParam(),
    ApiOkResponse({ type: VideoJobCancelledDto, description: 'Cancelled (at RunPod too when it ran there)' }),
    ApiErrors([404, 'No such job of yours'], [409, 'The job has already ended']),
  );

type CancelAnswer = { jobId: string; status: JobStatus; message: string };

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
 * the task's metadata. The bodies are taken as they come (`unknown`) and validated by hand as the task's create DTO,
 * which is how the sources' shapes (id_roteiro, a numeric clip id) pass; the document shows them as those DTOs.
 */
@ApiTags('video API of the sources')
@ApiAuthenticated()
@ApiExtraModels(OrchestratorJobAcceptedDto, VideoJobAcceptedDto)
@Controller()
export class VideoJobsController {
  constructor(
    private readonly tasks: TasksService,
    private readonly waiter: TaskWaiter,
    private readonly idempotency: IdempotencyService,
    private readonly config: AppConfig,
  ) {}

  @Post('video/img2vid')
  @SubmitRoute(
    'sync',
    'One clip per image {id, image_url, duracao}',
    SourcesImg2VidBodyDto,
    SOURCES_BODY_EXAMPLES.img2vid,
  )
  submitImg2VidJob(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Img2Vid, body, {}, request, reply);
  }

  @Post('video/img2vid/async')
  @SubmitRoute(
    'async',
    'One clip per image {id, image_url, duracao}',
    SourcesImg2VidBodyDto,
    SOURCES_BODY_EXAMPLES.img2vid,
  )
  submitImg2VidJobAsync(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Img2Vid, body, {}, request, reply);
  }

  @Post('video/caption')
  @SubmitRoute('sync', 'Burn the SRT at url_srt into url_video', SourcesCaptionBodyDto, SOURCES_BODY_EXAMPLES.caption)
  submitCaptionJob(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, {}, request, reply);
  }

  @Post('video/caption/async')
  @SubmitRoute('async', 'Burn the SRT at url_srt into url_video', SourcesCaptionBodyDto, SOURCES_BODY_EXAMPLES.caption)
  submitCaptionJobAsync(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, {}, request, reply);
  }

  @Post('caption_style/segments')
  @SubmitRoute(
    'sync',
    'Captions in the "segments" style',
    SourcesCaptionStyleBodyDto,
    SOURCES_BODY_EXAMPLES.captionStyle,
  )
  submitSegmentsCaptionJob(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'segments' }, request, reply);
  }

  @Post('caption_style/segments/async')
  @SubmitRoute(
    'async',
    'Captions in the "segments" style',
    SourcesCaptionStyleBodyDto,
    SOURCES_BODY_EXAMPLES.captionStyle,
  )
  submitSegmentsCaptionJobAsync(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'segments' }, request, reply);
  }

  @Post('caption_style/highlight')
  @SubmitRoute(
    'sync',
    'Captions highlighted word by word',
    SourcesCaptionStyleBodyDto,
    SOURCES_BODY_EXAMPLES.captionStyle,
  )
  submitHighlightCaptionJob(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'highlight' }, request, reply);
  }

  @Post('caption_style/highlight/async')
  @SubmitRoute(
    'async',
    'Captions highlighted word by word',
    SourcesCaptionStyleBodyDto,
    SOURCES_BODY_EXAMPLES.captionStyle,
  )
  submitHighlightCaptionJobAsync(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.Caption, body, { style: 'highlight' }, request, reply);
  }

  @Post('video/addaudio')
  @SubmitRoute('sync', 'Mux url_audio into url_video', SourcesAddAudioBodyDto, SOURCES_BODY_EXAMPLES.addaudio)
  submitAddAudioJob(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.AddAudio, body, {}, request, reply);
  }

  @Post('video/addaudio/async')
  @SubmitRoute('async', 'Mux url_audio into url_video', SourcesAddAudioBodyDto, SOURCES_BODY_EXAMPLES.addaudio)
  submitAddAudioJobAsync(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SubmitAnswer> {
    return this.submit(user, TaskType.AddAudio, body, {}, request, reply);
  }

  @Get('jobs/:id')
  @JobIdParam()
  @ApiOperation({
    summary:
      "A job in the orchestrator's words: status QUEUED → SUBMITTED → PROCESSING → COMPLETED | FAILED | CANCELLED, progress 0–100, result, error",
  })
  @ApiOkResponse({ type: OrchestratorJobDto })
  @ApiErrors([404, 'No such job of yours'])
  async getSourceJob(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<OrchestratorJobView> {
    const task = await this.tasks.get(user, id);
    // A split job's state is its parts': how many have run and how far.
    const parts = task.parts
      ? (await this.tasks.list(user, { parent_id: task.id, limit: 100, scope: user.isAdmin ? 'all' : 'own' })).data
      : [];
    return toOrchestratorView(task, parts);
  }

  @Get('video/job/:id')
  @JobIdParam()
  @ApiOperation({ summary: "A job in RunPod's words: status, delayTime and executionTime (ms), output, error" })
  @ApiOkResponse({ type: VideoJobDto })
  @ApiErrors([404, 'No such job of yours'])
  async getVideoJob(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<JobView> {
    return toJobView(await this.tasks.get(user, id));
  }

  @Get('video/job/:id/result')
  @JobIdParam()
  @ApiOperation({ summary: 'The result: 202 while the job runs, 200 once it has ended' })
  @ApiOkResponse({ type: VideoJobResultDto, description: 'The job has ended (COMPLETED, FAILED or CANCELLED)' })
  @ApiAcceptedResponse({ type: VideoJobPendingDto, description: 'The job still runs: poll again' })
  @ApiErrors([404, 'No such job of yours'])
  async getVideoJobResult(
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

  @Post('jobs/:id/cancel')
  @ApiCancelJob()
  @ApiOperation({ summary: 'Cancel a queued or running job (at RunPod too), at the orchestrator’s path' })
  cancelSourceJob(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<CancelAnswer> {
    return this.cancel(user, id);
  }

  @Post('job/:id/cancel')
  @ApiCancelJob()
  @ApiOperation({ summary: 'Cancel a queued or running job (at RunPod too), at the async video API’s path' })
  cancelVideoJob(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<CancelAnswer> {
    return this.cancel(user, id);
  }

  private async cancel(user: AuthUser, id: string): Promise<CancelAnswer> {
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
