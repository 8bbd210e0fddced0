import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminGuard } from '../auth/admin.guard';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { DomainException, ErrorCode, ValidationException } from '../common/domain-exception';
import { InlineImagesBody } from '../common/inline-images-body';
import { ApiAdmin, ApiAuthenticated, ApiErrors, ApiIdempotencyErrors, IDEMPOTENT_BAD_REQUEST } from '../common/openapi';
import { SqlClient } from '../database/sql-client';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { DTO_BY_TYPE, validateAs } from '../tasks/dto/task-dto-by-type';
import { TaskStatus, TaskType } from '../tasks/task.enums';
import { TasksService } from '../tasks/tasks.service';
import {
  IMAGE_APP_BODY_EXAMPLES,
  IMAGE_APP_QUEUE_NAMES,
  ImageAppJobBodyDto,
  ImageAppJobDto,
  ImageAppJobQueuedDto,
  ImageAppQueueCountsDto,
  ImageAppQueueStatsDto,
} from './dto/image-jobs.dto';
import {
  IMAGE_APP_QUEUES,
  ImageAppQueue,
  imageEditInput,
  ImageJobStatus,
  imageJobStatus,
  ImageJobView,
  queueOf,
  toImageJobView,
} from './image-jobs.mapper';

type QueueCounts = Record<ImageJobStatus, number>;

// Unfinished tasks through the partial index of unfinished ones, finished ones of the last day through the creation
// index: the image app's queues kept finished jobs for about that long.
const COUNTS = `
  SELECT input->>'operation' AS operation, status, count(*)::int AS n FROM tasks
  WHERE type = 'image_edit'
    AND (status IN ('pending', 'queued', 'processing') OR created_at > now() - interval '1 day')
  GROUP BY 1, 2`;

/**
 * The routes of the image app of the sources (CONTRACT.md, "Image operations"), unchanged for its front end: a
 * submit per operation answers a job id at once, the front end polls the job's status (every 2 s) until it has the
 * output image, and the admin page reads counts per queue. Thin adapters over image_edit tasks, so a job is also
 * `/api/v1/media/tasks/{id}`.
 */
@ApiTags('image app of the sources')
@ApiExtraModels(ImageAppQueueCountsDto)
@Controller('api')
export class ImageJobsController {
  constructor(
    private readonly tasks: TasksService,
    private readonly idempotency: IdempotencyService,
    private readonly sql: SqlClient,
  ) {}

  @Post(':queue/generate-async')
  @HttpCode(200)
  @Idempotent()
  @InlineImagesBody()
  @ApiAuthenticated()
  @ApiParam({ name: 'queue', enum: IMAGE_APP_QUEUE_NAMES, enumName: 'ImageAppQueue', description: 'The operation' })
  @ApiBody({ type: ImageAppJobBodyDto, examples: IMAGE_APP_BODY_EXAMPLES })
  @ApiOkResponse({ type: ImageAppJobQueuedDto, description: 'Queued' })
  @ApiIdempotencyErrors()
  @ApiErrors(
    [400, `${IDEMPOTENT_BAD_REQUEST}; fields named as on /api/v1/media/images/edit`],
    415,
    [403, 'An API key without the scope `tasks`, or too few credits for the job (CREDITS_ENABLED)'],
    [404, 'No such queue; the message names the known ones'],
    [413, 'The body is over the inline images limit (IMAGE_INLINE_MAX_BYTES)'],
  )
  @ApiOperation({
    summary: 'Queue an image operation: stencil, enhance, ia-gen or color-match',
    description:
      'Bodies as the image app sends them: {image, style, promptDetails} (stencil), {image, …} (enhance), ' +
      '{prompt | promptDetails, images? | referenceImages?} (ia-gen), {image, referenceImage} (color-match).',
  })
  async submitImageAppJob(
    @CurrentUser() user: AuthUser,
    @Param('queue') queue: string,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ success: true; jobId: string; message: string }> {
    const name = this.queueNamed(queue);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ValidationException([{ field: 'body', message: 'the body must be a JSON object' }]);
    }
    const { dto, problems } = validateAs(
      DTO_BY_TYPE[TaskType.ImageEdit],
      imageEditInput(name, body as Record<string, unknown>),
    );
    if (problems.length) throw new ValidationException(problems);
    return this.idempotency.run(request, reply, user.id, async () => {
      const task = await this.tasks.create(user, TaskType.ImageEdit, dto);
      return { success: true as const, jobId: task.id, message: `${name} job queued` };
    });
  }

  @Get('queue/status/:jobId')
  @ApiAuthenticated()
  @ApiOperation({ summary: 'A job: waiting | active | completed | failed, progress 0–100, result {image}, error' })
  @ApiParam({ name: 'jobId', format: 'uuid', description: 'The job (a task id)' })
  @ApiQuery({
    name: 'queue',
    required: false,
    enum: IMAGE_APP_QUEUE_NAMES,
    enumName: 'ImageAppQueue',
    description: 'The queue the job should be in',
  })
  @ApiOkResponse({ type: ImageAppJobDto })
  @ApiErrors([404, 'No such job of yours, or none in that queue'])
  async getImageAppJobStatus(
    @CurrentUser() user: AuthUser,
    @Param('jobId') jobId: string,
    @Query('queue') queue?: string,
  ): Promise<ImageJobView> {
    const task = await this.tasks.get(user, jobId);
    const operation = task.type === TaskType.ImageEdit ? (task.input.operation as string) : undefined;
    // A job of another queue is not in this one, as BullMQ's getJob would answer.
    if (!operation || (queue !== undefined && queueOf(operation) !== queue)) {
      throw new DomainException(ErrorCode.NotFound, `no job ${jobId} in queue ${queue ?? 'of the image app'}`);
    }
    return toImageJobView(task);
  }

  @Get('admin/queue-stats')
  @UseGuards(AdminGuard)
  @ApiAdmin()
  @ApiOperation({
    summary: 'Jobs per queue (admins): waiting, active, and completed and failed in the last 24 h',
  })
  @ApiOkResponse({ type: ImageAppQueueStatsDto })
  async getImageAppQueueStats(): Promise<{ success: true; data: Record<ImageAppQueue, QueueCounts> }> {
    const data = Object.fromEntries(
      Object.keys(IMAGE_APP_QUEUES).map((q) => [q, { waiting: 0, active: 0, completed: 0, failed: 0 }]),
    ) as Record<ImageAppQueue, QueueCounts>;
    for (const row of await this.sql.rows<{ operation: string; status: TaskStatus; n: number }>(COUNTS)) {
      const queue = queueOf(row.operation);
      if (queue) data[queue][imageJobStatus(row.status)] += row.n;
    }
    return { success: true, data };
  }

  private queueNamed(queue: string): ImageAppQueue {
    if (!(queue in IMAGE_APP_QUEUES)) {
      throw new DomainException(ErrorCode.NotFound, `no queue ${queue} (${Object.keys(IMAGE_APP_QUEUES).join(', ')})`);
    }
    return queue as ImageAppQueue;
  }
}
