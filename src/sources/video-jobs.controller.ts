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
import { JobStatus, jobPaths, JobView, toJobView } from './video-jobs.mapper';

interface Accepted {
  jobId: string;
  status: JobStatus;
  statusUrl: string;
  resultUrl: string;
  estimatedTime: string;
  message: string;
}

/**
 * The routes of the video API of the sources (CONTRACT.md, "The video API of the sources"), unchanged for their
 * clients (n8n flows among them): thin adapters over the same tasks, so a job is also `/api/v1/media/tasks/{id}`.
 * `…/async` answers at once; the route without it waits for the result (as the synchronous mode did, up to
 * SOURCES_SYNC_WAIT_SECONDS, 15 min), and any of them honours `Prefer: wait` up to that. `id_roteiro` travels in the task's metadata.
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
  ): Promise<Accepted | JobView> {
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
  ): Promise<Accepted | JobView> {
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
  ): Promise<Accepted | JobView> {
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
  ): Promise<Accepted | JobView> {
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
  ): Promise<Accepted | JobView> {
    return this.submit(user, TaskType.AddAudio, body, {}, request, reply);
  }

  @Get(['jobs/:id', 'video/job/:id'])
  @ApiOperation({ summary: 'A job: status, delayTime and executionTime (ms), output, error' })
  async job(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<JobView> {
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
      return { jobId: view.id, status: view.status, ...jobPaths(view.id) };
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
  async cancel(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<{ jobId: string; status: JobStatus }> {
    const task = await this.tasks.cancel(user, id);
    return { jobId: task.id, status: toJobView(task).status };
  }

  private submit(
    user: AuthUser,
    type: TaskType,
    body: unknown,
    fixed: Record<string, unknown>,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<Accepted | JobView> {
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
    return this.idempotency.run(request, reply, user.id, async () => {
      const isAsync = request.url.split('?')[0].endsWith('/async');
      // The synchronous mode of the sources held the request until the job ended (up to 15 min by default).
      const max = this.config.sourcesSyncWaitSeconds;
      const seconds = parsePreferWait(request.headers.prefer, max) ?? (isAsync ? undefined : max);
      if (seconds === undefined) {
        void reply.status(202);
        return accepted(type, await this.tasks.create(user, type, dto, sources));
      }
      const { created, finished, waited } = await this.waiter.createAndWait(user.id, seconds, (id) =>
        this.tasks.create(user, type, dto, { ...sources, id }),
      );
      if (waited) void reply.header('preference-applied', `wait=${seconds}`);
      void reply.status(finished ? 200 : 202);
      return finished ? toJobView(await this.tasks.get(user, created.id)) : accepted(type, created);
    });
  }
}

function accepted(type: TaskType, task: TaskResponseDto): Accepted {
  const images = Array.isArray(task.input.images) ? task.input.images.length : 0;
  const estimate = type === TaskType.Img2Vid ? `~${Math.max(1, Math.ceil((images * 2) / 60))} minutes` : '~1 minute';
  return {
    jobId: task.id,
    status: 'IN_QUEUE',
    ...jobPaths(task.id),
    estimatedTime: estimate,
    message: 'Job queued',
  };
}
