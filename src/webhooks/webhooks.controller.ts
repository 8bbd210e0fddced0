import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ScopeQueryDto } from '../tasks/dto/task-search.dto';
import { DeadLetterQueryDto, DeliveryDto, DeliveryListDto, DeliveryStatisticsDto } from './webhook.dto';
import { WebhooksService } from './webhooks.service';

@ApiTags('webhooks')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@Controller('api/v1/media')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get('webhooks/statistics')
  @ApiOperation({ summary: 'Your deliveries by status, success rate and latency' })
  @ApiOkResponse({ type: DeliveryStatisticsDto })
  statistics(@CurrentUser() user: AuthUser, @Query() query: ScopeQueryDto): Promise<DeliveryStatisticsDto> {
    return this.webhooks.statistics(user, query.scope);
  }

  @Get('webhooks/dead-letters')
  @ApiOperation({ summary: 'Deliveries out of retries (or answered 410 Gone), newest first' })
  @ApiOkResponse({ type: DeliveryListDto })
  deadLetters(@CurrentUser() user: AuthUser, @Query() query: DeadLetterQueryDto): Promise<DeliveryListDto> {
    return this.webhooks.deadLetters(user, query);
  }

  @Get('webhooks/:id/status')
  @ApiOperation({ summary: 'A delivery, with every attempt' })
  @ApiOkResponse({ type: DeliveryDto })
  @ApiNotFoundResponse({ description: 'No such delivery of yours' })
  status(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryDto> {
    return this.webhooks.status(user, id);
  }

  @Post('webhooks/:id/replay')
  @HttpCode(202)
  @ApiOperation({ summary: 'Deliver again, with the same webhook-id' })
  @ApiAcceptedResponse({ type: DeliveryDto })
  @ApiNotFoundResponse({ description: 'No such delivery of yours' })
  @ApiConflictResponse({ description: 'Still being delivered (pending, or failed and waiting for a retry)' })
  replay(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryDto> {
    return this.webhooks.replay(user, id);
  }

  @Get('tasks/:id/webhooks')
  @ApiOperation({ summary: "A task's webhook deliveries, with their attempts" })
  @ApiOkResponse({ type: DeliveryListDto })
  @ApiNotFoundResponse({ description: 'No such task of yours' })
  forTask(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryListDto> {
    return this.webhooks.forTask(user, id);
  }
}
