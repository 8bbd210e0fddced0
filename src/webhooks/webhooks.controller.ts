import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ApiAuthenticated, ApiErrors } from '../common/openapi';
import { TASK_ID_PARAM } from '../tasks/dto/task-examples';
import { ScopeQueryDto } from '../tasks/dto/task-search.dto';
import { DeadLetterQueryDto, DeliveryDto, DeliveryListDto, DeliveryStatisticsDto } from './webhook.dto';
import { WebhooksService } from './webhooks.service';

const DELIVERY_ID = {
  name: 'id',
  description: "The delivery's id (its webhook-id header)",
  schema: { type: 'string', format: 'uuid' },
} as const;
const NO_DELIVERY: [number, string] = [404, 'No such delivery of yours'];
const SCOPE_ALL: [number, string] = [403, 'scope=all without the admin role, or a key without the tasks scope'];

@ApiTags('webhooks')
@ApiAuthenticated()
@Controller('api/v1/media')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get('webhooks/statistics')
  @ApiOperation({ summary: 'Your deliveries by status, success rate and latency' })
  @ApiOkResponse({ type: DeliveryStatisticsDto })
  @ApiErrors([400, 'scope is neither own nor all'], SCOPE_ALL)
  getWebhookStatistics(@CurrentUser() user: AuthUser, @Query() query: ScopeQueryDto): Promise<DeliveryStatisticsDto> {
    return this.webhooks.statistics(user, query.scope);
  }

  @Get('webhooks/dead-letters')
  @ApiOperation({ summary: 'Deliveries out of retries (or answered 410 Gone), newest first' })
  @ApiOkResponse({ type: DeliveryListDto })
  @ApiErrors([400, 'limit out of 1–100, a cursor not of this list, or an unknown scope'], SCOPE_ALL)
  listDeadLetters(@CurrentUser() user: AuthUser, @Query() query: DeadLetterQueryDto): Promise<DeliveryListDto> {
    return this.webhooks.deadLetters(user, query);
  }

  @Get('webhooks/:id/status')
  @ApiOperation({ summary: 'A delivery, with every attempt' })
  @ApiParam(DELIVERY_ID)
  @ApiOkResponse({ type: DeliveryDto })
  @ApiErrors(NO_DELIVERY)
  getWebhookDelivery(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryDto> {
    return this.webhooks.status(user, id);
  }

  @Post('webhooks/:id/replay')
  @HttpCode(202)
  @ApiOperation({ summary: 'Deliver again, with the same webhook-id' })
  @ApiParam(DELIVERY_ID)
  @ApiAcceptedResponse({ type: DeliveryDto, description: 'Queued for delivery again: the delivery' })
  @ApiErrors(NO_DELIVERY, [409, 'Still being delivered (pending, or failed and waiting for a retry)'])
  replayWebhookDelivery(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryDto> {
    return this.webhooks.replay(user, id);
  }

  @Get('tasks/:id/webhooks')
  @ApiOperation({ summary: "A task's webhook deliveries, with their attempts" })
  @ApiParam(TASK_ID_PARAM)
  @ApiOkResponse({ type: DeliveryListDto })
  @ApiErrors([404, 'No such task of yours'])
  listTaskWebhookDeliveries(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<DeliveryListDto> {
    return this.webhooks.forTask(user, id);
  }
}
