import { applyDecorators, Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiHeader,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
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

const Created = () => ApiAcceptedResponse({ type: TaskResponseDto, description: 'Accepted: the task, queued' });
const Waitable = () =>
  applyDecorators(
    ApiHeader({
      name: 'Prefer',
      required: false,
      description:
        'wait or wait=N (N ≤ 60): hold the answer until the task finishes (200) or N seconds pass (202); answered at ' +
        'once (202, no Preference-Applied) when you already hold HELD_CONNECTIONS_PER_USER connections open',
    }),
    ApiOkResponse({ type: TaskResponseDto, description: 'With Prefer: wait, the task finished in time' }),
  );

@ApiTags('tasks')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@ApiBadRequestResponse({ description: 'A field is missing, of the wrong type, out of range or unknown' })
@ApiServiceUnavailableResponse({ description: 'Postgres or Redis is unavailable; see Retry-After' })
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
  @Waitable()
  @ApiOperation({ summary: 'Generate images from a prompt' })
  @Created()
  @ApiPayloadTooLargeResponse({ description: 'Body over 1 MiB' })
  generateImage(
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
  @Waitable()
  @ApiOperation({ summary: 'Generate a video from a prompt (and optionally a start image)' })
  @Created()
  generateVideo(
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
  @Waitable()
  @ApiOperation({ summary: 'Transcribe an audio file' })
  @Created()
  transcribe(
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
  @Waitable()
  @ApiOperation({ summary: 'Turn text into timed subtitles (SRT, WebVTT or ASS)' })
  @Created()
  generateSubtitles(
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
  @Waitable()
  @ApiOperation({ summary: 'Turn each image into a clip of its own duration' })
  @Created()
  img2vid(
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
  @Waitable()
  @ApiOperation({ summary: 'Burn SRT captions into a video' })
  @Created()
  caption(
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
  @Waitable()
  @ApiOperation({ summary: 'Mux an audio track into a video' })
  @Created()
  addAudio(
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
  @Waitable()
  @InlineImagesBody()
  @ApiOperation({
    summary: 'Edit an image: stencil, enhance, generate from references, or colour match',
    description:
      'Media fields take http(s) URLs, upload:<id> references, or base64 data:image URLs (IMAGE_INLINE_MAX_BYTES ' +
      'together; this route takes bodies that fit them).',
  })
  @Created()
  @ApiPayloadTooLargeResponse({
    description: 'Body over the inline images limit (IMAGE_INLINE_MAX_BYTES, base64) + 1 MiB',
  })
  editImage(
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
  list(@CurrentUser() user: AuthUser, @Query() query: TaskSearchDto): Promise<TaskListResponseDto> {
    return this.tasks.list(user, query);
  }

  @Get('tasks/:id')
  @ApiOperation({ summary: 'A task' })
  @ApiOkResponse({ type: TaskResponseDto })
  @ApiNotFoundResponse({ description: 'No such task of yours' })
  get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.get(user, id);
  }

  @Get('tasks/:id/result')
  @ApiOperation({ summary: 'The output of a finished task' })
  @ApiOkResponse({ type: TaskResultResponseDto, description: 'Completed: the output' })
  @ApiAcceptedResponse({ type: TaskResultResponseDto, description: 'Not finished yet' })
  @ApiConflictResponse({ description: 'Failed or cancelled: the error' })
  async result(
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
  @ApiOkResponse({ type: TaskResponseDto })
  @ApiConflictResponse({ description: 'Already finished' })
  cancel(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.cancel(user, id);
  }

  @Post('tasks/:id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a failed or cancelled task again' })
  @ApiAcceptedResponse({ type: TaskResponseDto })
  @ApiConflictResponse({ description: 'Not failed or cancelled' })
  retry(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<TaskResponseDto> {
    return this.tasks.retry(user, id);
  }
}
