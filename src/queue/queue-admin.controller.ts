import { Body, Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiBody,
  ApiExtraModels,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiSecurity,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { ApiKeyScope } from '../api-keys/api-key-scopes';
import { AdminGuard } from '../auth/admin.guard';
import { KeyScope } from '../auth/auth.decorators';
import { QueueCleanDto } from './dto/queue-clean.dto';
import { QueueStatsDto, QueueStatsResponseDto } from './dto/queue-stats-response.dto';
import { QueueSummaryCleanDto, QueueSummaryResponseDto } from './dto/queue-summary.dto';
import { QueueName } from './queue.constants';
import { QueueAdminService, QueueCleanResult } from './queue-admin.service';

const QueueNameParam = () => ApiParam({ name: 'name', enum: QueueName });

@ApiTags('queue')
@ApiBearerAuth()
@ApiExtraModels(QueueStatsDto)
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@ApiSecurity('X-API-Key')
@ApiForbiddenResponse({ description: 'Neither an admin token nor an API key with the scope the route names' })
@UseGuards(AdminGuard)
@Controller()
export class QueueAdminController {
  constructor(private readonly admin: QueueAdminService) {}

  // `/queue/stats` is where the sources' orchestrator served it.
  @Get(['api/v1/queue/stats', 'queue/stats'])
  @KeyScope(ApiKeyScope.QueueRead)
  @ApiOperation({
    summary: 'Per queue: waiting, prioritized, active, completed, failed, delayed, paused; and totals',
    description: 'Admins, and API keys with the scope queue:read (or queue:write)',
  })
  @ApiOkResponse({ type: QueueStatsResponseDto })
  stats(): Promise<QueueStatsResponseDto> {
    return this.admin.stats();
  }

  @Post('api/v1/queue/clean')
  @HttpCode(200)
  @KeyScope(ApiKeyScope.QueueWrite)
  @ApiOperation({
    summary: 'Remove finished jobs older than grace_ms from Redis (task rows stay)',
    description: 'Admins, and API keys with the scope queue:write',
  })
  @ApiBody({ type: QueueCleanDto, required: false })
  @ApiOkResponse({ description: '{grace_ms, statuses, removed: {<queue>: {completed, failed}}, total_removed}' })
  @ApiBadRequestResponse({ description: 'A field is of the wrong type, out of range or unknown' })
  clean(@Body() dto: QueueCleanDto): Promise<QueueCleanResult> {
    return this.admin.clean({ graceMs: dto.grace_ms ?? 0, status: dto.status, limit: dto.limit });
  }

  // The chatbot system's two routes, with its body shapes; admins only (its clients held admin tokens).
  @Get('api/queue/stats')
  @ApiOperation({ summary: 'Per queue: waiting, active, completed, failed, delayed; the running jobs; totals' })
  @ApiOkResponse({ type: QueueSummaryResponseDto })
  async summary(): Promise<QueueSummaryResponseDto> {
    return { status: 'success', data: await this.admin.summary() };
  }

  @Post('api/queue/clean')
  @HttpCode(200)
  @ApiOperation({ summary: 'Remove finished jobs older than grace_ms from the queues (task rows stay)' })
  @ApiBody({ type: QueueSummaryCleanDto, required: false })
  @ApiOkResponse({ description: '{status: "success", data: {removed}}: how many jobs were removed' })
  @ApiBadRequestResponse({ description: 'A field is of the wrong type, out of range or unknown' })
  async summaryClean(
    @Body() dto: QueueSummaryCleanDto = {},
  ): Promise<{ status: 'success'; data: { removed: number } }> {
    const result = await this.admin.clean({ graceMs: dto.grace_ms ?? 0, statuses: dto.states });
    return { status: 'success', data: { removed: result.total_removed } };
  }

  @Post('api/v1/queue/:name/pause')
  @HttpCode(200)
  @KeyScope(ApiKeyScope.QueueWrite)
  @QueueNameParam()
  @ApiOperation({
    summary: 'Pause a queue: workers take no new job from it (running jobs finish)',
    description: 'Admins, and API keys with the scope queue:write',
  })
  @ApiOkResponse({ type: QueueStatsDto })
  @ApiNotFoundResponse({ description: 'No such queue; the message names the known ones' })
  pause(@Param('name') name: string) {
    return this.admin.pause(name);
  }

  @Post('api/v1/queue/:name/resume')
  @HttpCode(200)
  @KeyScope(ApiKeyScope.QueueWrite)
  @QueueNameParam()
  @ApiOperation({ summary: 'Resume a paused queue', description: 'Admins, and API keys with the scope queue:write' })
  @ApiOkResponse({ type: QueueStatsDto })
  @ApiNotFoundResponse({ description: 'No such queue; the message names the known ones' })
  resume(@Param('name') name: string) {
    return this.admin.resume(name);
  }
}
