import { applyDecorators, Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiExtension,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import {
  AddAudioDto,
  AudioTranscribeDto,
  CaptionDto,
  Img2VidDto,
  ImageGenerateDto,
  SubtitleGenerateDto,
  VideoGenerateDto,
} from './dto/task-create.dto';
import { TaskListResponseDto, TaskResponseDto, TaskResultResponseDto } from './dto/task-response.dto';
import { TaskSearchDto } from './dto/task-search.dto';
import { ImageEditDto } from './dto/image-edit.dto';
import { InlineImagesBody } from '../common/inline-images-body';
import { TaskType } from './task.enums';
import { TasksService } from './tasks.service';
import { parsePreferWait, TaskWaiter } from './task-waiter';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { TaskCreateBaseDto } from './dto/task-create-base.dto';
import { ApiAuthenticated, ApiErrors, IDEMPOTENT_REPLAYED_HEADER } from '../common/openapi';
import { TASK_ID_PARAM, TASK_CREATE_EXAMPLES } from './dto/task-examples';

/**
 * A submit route: its body's examples, 202 with the queued task (or 200 with the finished one under `Prefer: wait`),
 * and the errors a submit can answer.
 */
const SUBMIT_HEADERS = {
  'Preference-Applied': {
    description: 'wait=N when the answer was held (Prefer: wait honoured)',
    schema: { type: 'string', example: 'wait=30' },
  },
  'Idempotent-Replayed': IDEMPOTENT_REPLAYED_HEADER,
};

const Submit = (type: TaskType, dto: new () => TaskCreateBaseDto, bodyLimit?: string) =>
  applyDecorators(
    // The task type this route makes, for clients that build their forms from the document (the console does).
    ApiExtension('x-task-type', type),
    ApiBody({ type: dto, examples: TASK_CREATE_EXAMPLES[type] }),
    ApiHeader({
      name: 'Prefer',
      required: false,
      description:
        'wait or wait=N (N ≤ 60): hold the answer until the task finishes (200) or N seconds pass (202); answered at ' +
        'once (202, no Preference-Applied) when you already hold HELD_CONNECTIONS_PER_USER connections open',
    }),
    ApiAcceptedResponse({
      type: TaskResponseDto,
      description: 'Accepted: the task, queued (with Prefer: wait, not finished within the wait)',
      headers: SUBMIT_HEADERS,
    }),
    ApiOkResponse({
      type: TaskResponseDto,
      description: 'With Prefer: wait, the task finished in time',
      headers: SUBMIT_HEADERS,
    }),
    ApiErrors(
      400,
      [403, 'A key without the tasks scope, or too few credits for the price (CREDITS_ENABLED)'],
      [409, 'A request with the same Idempotency-Key is still in progress'],
      [413, bodyLimit ?? 'Body over 1 MiB'],
      [415, 'The body is not JSON'],
      422,
    ),
  );

@ApiTags('tasks')
@ApiAuthenticated()
@Controller('api/v1/media')
export class TasksController {
  constructor(
    private readonly tasks: TasksService,
    private readonly waiter: TaskWaiter,
    private readonly idempotency: IdempotencyService,
  ) {}

  /**
   * 202 with the queued task; with `Prefer: wait[=N]`, the answer is held until the task finishes (200 with it) or
   * N seconds pass (202). The subscription is made before the task exists, so a fast task's end is never missed.
   */
  private submit(
    user: AuthUser,
    type: TaskType,
    dto: TaskCreateBaseDto,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.idempotency.run(request, reply, user.id, async () => {
      const seconds = parsePreferWait(request.headers.prefer);
      if (seconds === undefined) {
        void reply.status(202);
        return this.tasks.create(user, type, dto);
      }
      const {
        created,
        finished: done,
        waited,
      } = await this.waiter.createAndWait(user.id, seconds, (id) => this.tasks.create(user, type, dto, { id }));
      if (waited) void reply.header('preference-applied', `wait=${seconds}`);
      void reply.status(done ? 200 : 202);
      return done ? this.tasks.get(user, created.id) : created;
    });
  }

  @Post('images/generate')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Generate images from a prompt' })
  @Submit(TaskType.ImageGeneration, ImageGenerateDto)
  createImageTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: ImageGenerateDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.ImageGeneration, dto, request, reply);
  }

  @Post('videos/generate')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Generate a video from a prompt (and optionally a start image)' })
  @Submit(TaskType.VideoGeneration, VideoGenerateDto)
  createVideoTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: VideoGenerateDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.VideoGeneration, dto, request, reply);
  }

  @Post('audio/transcribe')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Transcribe an audio file' })
  @Submit(TaskType.AudioTranscription, AudioTranscribeDto)
  createTranscriptionTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: AudioTranscribeDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.AudioTranscription, dto, request, reply);
  }

  @Post('subtitles/generate')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Turn text into timed subtitles (SRT, WebVTT or ASS)' })
  @Submit(TaskType.SubtitleGeneration, SubtitleGenerateDto)
  createSubtitleTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: SubtitleGenerateDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.SubtitleGeneration, dto, request, reply);
  }

  @Post('videos/img2vid')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Turn each image into a clip of its own duration' })
  @Submit(TaskType.Img2Vid, Img2VidDto)
  createImg2VidTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: Img2VidDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.Img2Vid, dto, request, reply);
  }

  @Post('videos/caption')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Burn SRT captions into a video' })
  @Submit(TaskType.Caption, CaptionDto)
  createCaptionTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: CaptionDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.Caption, dto, request, reply);
  }

  @Post('videos/addaudio')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Mux an audio track into a video' })
  @Submit(TaskType.AddAudio, AddAudioDto)
  createAddAudioTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: AddAudioDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.AddAudio, dto, request, reply);
  }

  @Post('images/edit')
  @HttpCode(202)
  @Idempotent()
  @InlineImagesBody()
  @ApiOperation({
    summary: 'Edit an image: stencil, enhance, generate from references, or colour match',
    description:
      'Media fields take http(s) URLs, upload:<id> references, or base64 data:image URLs (IMAGE_INLINE_MAX_BYTES ' +
      'together; this route takes bodies that fit them).',
  })
  @Submit(
    TaskType.ImageEdit,
    ImageEditDto,
    'Body over the inline images limit (IMAGE_INLINE_MAX_BYTES, base64) + 1 MiB',
  )
  createImageEditTask(
    @CurrentUser() user: AuthUser,
    @Body() dto: ImageEditDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResponseDto> {
    return this.submit(user, TaskType.ImageEdit, dto, request, reply);
  }

  @Get('tasks')
  @ApiOperation({ summary: 'Your tasks, newest first, with filters and a cursor' })
  @ApiOkResponse({ type: TaskListResponseDto })
  @ApiErrors([400, 'A filter out of range or of the wrong type, or a cursor not of this list'])
  listTasks(@CurrentUser() user: AuthUser, @Query() query: TaskSearchDto): Promise<TaskListResponseDto> {
    return this.tasks.list(user, query);
  }

  @Get('tasks/:id')
  @ApiOperation({ summary: 'A task' })
  @ApiParam(TASK_ID_PARAM)
  @ApiOkResponse({ type: TaskResponseDto })
  @ApiErrors([404, 'No such task of yours'])
  getTask(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.get(user, id);
  }

  @Get('tasks/:id/result')
  @ApiOperation({ summary: 'The output of a finished task' })
  @ApiParam(TASK_ID_PARAM)
  @ApiOkResponse({ type: TaskResultResponseDto, description: 'Completed: the output' })
  @ApiAcceptedResponse({ type: TaskResultResponseDto, description: 'Not finished yet: the status, without output' })
  @ApiErrors([404, 'No such task of yours'], [409, 'Failed or cancelled: the error (code task_failed)'])
  async getTaskResult(
    @CurrentUser() user: AuthUser,
    @Param('id') id: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskResultResponseDto> {
    const result = await this.tasks.result(user, id);
    void reply.status(result.state === 'completed' ? 200 : 202);
    return result.body;
  }

  @Post('tasks/:id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a queued or running task (at the provider too)' })
  @ApiParam(TASK_ID_PARAM)
  @ApiOkResponse({ type: TaskResponseDto, description: 'Cancelled: the task' })
  @ApiErrors([404, 'No such task of yours'], [409, 'Already finished'])
  cancelTask(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.cancel(user, id);
  }

  @Post('tasks/:id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a failed or cancelled task again' })
  @ApiParam(TASK_ID_PARAM)
  @ApiAcceptedResponse({ type: TaskResponseDto, description: 'Queued again: the task' })
  @ApiErrors([404, 'No such task of yours'], [409, 'Not failed or cancelled'])
  retryTask(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.retry(user, id);
  }
}
