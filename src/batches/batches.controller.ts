import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { ApiAuthenticated, ApiErrors, IDEMPOTENT_REPLAYED_HEADER } from '../common/openapi';
import { BatchesService } from './batches.service';
import { BatchCreateDto, BatchItemDto } from './dto/batch-create.dto';
import { BatchCreatedResponseDto, BatchListResponseDto, BatchResponseDto } from './dto/batch-response.dto';
import { PageQueryDto } from '../common/page-query.dto';

const ITEM = { task_type: 'subtitle_generation', input_data: { text: 'Hello there.' } };

@ApiTags('batches')
@ApiAuthenticated()
@ApiExtraModels(BatchCreateDto, BatchItemDto)
@Controller('api/v1/media')
export class BatchesController {
  constructor(
    private readonly batches: BatchesService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('batch')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({ summary: 'Submit up to 50 tasks at once: all are created, or (any invalid) none' })
  @ApiBody({
    schema: {
      oneOf: [
        { type: 'array', maxItems: 50, items: { $ref: getSchemaPath(BatchItemDto) } },
        { $ref: getSchemaPath(BatchCreateDto) },
      ],
    },
    examples: {
      object: {
        summary: 'Tasks with a batch webhook and metadata',
        value: {
          tasks: [
            ITEM,
            { task_type: 'image_generation', input_data: { prompt: 'a lighthouse at dawn' }, priority: 'high' },
          ],
          webhook_url: 'https://example.com/hooks/batches',
          webhook_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
          metadata: { campaign: 'winter' },
        },
      },
      array: { summary: 'A bare array of items', value: [ITEM, { ...ITEM, input_data: { text: 'Goodbye.' } }] },
    },
  })
  @ApiAcceptedResponse({
    type: BatchCreatedResponseDto,
    description: 'Accepted: every task, queued',
    headers: { 'Idempotent-Replayed': IDEMPOTENT_REPLAYED_HEADER },
  })
  @ApiErrors(
    [400, 'No tasks, more than 50, or invalid items (each listed with its index)'],
    [403, 'A key without the tasks scope, or too few credits for the whole batch (CREDITS_ENABLED)'],
    [409, 'A request with the same Idempotency-Key is still in progress'],
    [413, 'Body over 1 MiB'],
    [415, 'The body is not JSON'],
    422,
  )
  createBatch(
    @CurrentUser() user: AuthUser,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<BatchCreatedResponseDto> {
    return this.idempotency.run(request, reply, user.id, () => {
      void reply.status(202);
      return this.batches.create(user, body);
    });
  }

  @Get('batch')
  @ApiOperation({
    summary: 'Your batches, newest first: counts by status, without their tasks',
    description:
      "Each batch as GET /batch/{id} shows it, less its tasks (read them there). scope=all: every user's (admins " +
      'only). Pages of `limit` (≤ 100); pass `next_cursor` back as `cursor` for the next.',
  })
  @ApiOkResponse({ type: BatchListResponseDto })
  @ApiErrors(
    [400, 'limit out of range, scope neither own nor all, or a cursor not of this list'],
    [403, 'scope=all from a non-admin, or an API key without the scope `tasks`'],
  )
  listBatches(@CurrentUser() user: AuthUser, @Query() query: PageQueryDto): Promise<BatchListResponseDto> {
    return this.batches.list(user, query);
  }

  @Get('batch/:id')
  @ApiOperation({ summary: 'A batch: counts by status and its tasks' })
  @ApiParam({ name: 'id', description: "The batch's id", schema: { type: 'string', format: 'uuid' } })
  @ApiOkResponse({ type: BatchResponseDto })
  @ApiErrors([404, 'No such batch of yours'])
  getBatch(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<BatchResponseDto> {
    return this.batches.get(user, id);
  }
}
