import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiBody,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiTags,
  ApiUnauthorizedResponse,
  getSchemaPath,
  ApiExtraModels,
} from '@nestjs/swagger';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { Idempotent, IdempotencyService } from '../idempotency/idempotency.service';
import { BatchesService } from './batches.service';
import { BatchCreateDto, BatchItemDto } from './dto/batch-create.dto';
import { BatchCreatedResponseDto, BatchResponseDto } from './dto/batch-response.dto';

@ApiTags('batches')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
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
  })
  @ApiAcceptedResponse({ type: BatchCreatedResponseDto })
  @ApiBadRequestResponse({ description: 'No tasks, more than 50, or invalid items (each listed with its index)' })
  @ApiPayloadTooLargeResponse({ description: 'Body over 1 MiB' })
  create(
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

  @Get('batch/:id')
  @ApiOperation({ summary: 'A batch: counts by status and its tasks' })
  @ApiOkResponse({ type: BatchResponseDto })
  @ApiNotFoundResponse({ description: 'No such batch of yours' })
  get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<BatchResponseDto> {
    return this.batches.get(user, id);
  }
}
