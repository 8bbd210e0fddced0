import { applyDecorators, Body, Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiKeyScope } from '../api-keys/api-key-scopes';
import { AdminGuard } from '../auth/admin.guard';
import { KeyScope } from '../auth/auth.decorators';
import { ApiAdmin, ApiAuthenticated, ApiErrors, ApiJsonBodyErrors } from '../common/openapi';
import { QueueCleanDto, QueueCleanResponseDto, QueueRemovedDto } from './dto/queue-clean.dto';
import { QueueStateDto, QueueStatsDto, QueueStatsResponseDto } from './dto/queue-stats-response.dto';
import {
  QueueSummaryCleanDto,
  QueueSummaryCleanResponseDto,
  QueueSummaryCountsDto,
  QueueSummaryResponseDto,
} from './dto/queue-summary.dto';
import { QueueName } from './queue.constants';
import { QueueAdminService, QueueCleanResult } from './queue-admin.service';

const QueueNameParam = () =>
  ApiParam({
    name: 'name',
    enum: QueueName,
    enumName: 'QueueName',
    description: 'The queue',
    example: QueueName.Tasks,
  });

/** Admins, or an API key with `scope` (either scheme), and the errors of such a route. */
const ForAdminsAndKeys = (scope: ApiKeyScope) =>
  applyDecorators(
    KeyScope(scope),
    ApiAuthenticated(),
    ApiErrors([403, `Neither an admin token nor an API key with the scope ${scope}`]),
  );

@ApiTags('queues')
@ApiExtraModels(QueueStatsDto, QueueRemovedDto, QueueSummaryCountsDto)
@UseGuards(AdminGuard)
@Controller()
export class QueueAdminController {
  constructor(private readonly admin: QueueAdminService) {}

  @Get('api/v1/queue/stats')
  @ForAdminsAndKeys(ApiKeyScope.QueueRead)
  @ApiOperation({
    summary: 'Per queue: waiting, prioritized, active, completed, failed, delayed, paused; and totals',
    description: 'Admins, and API keys with the scope queue:read (or queue:write)',
  })
  @ApiOkResponse({ type: QueueStatsResponseDto })
  getQueueStats(): Promise<QueueStatsResponseDto> {
    return this.admin.stats();
  }

  // Where the sources' orchestrator served the same counts.
  @Get('queue/stats')
  @ForAdminsAndKeys(ApiKeyScope.QueueRead)
  @ApiOperation({
    summary: 'The queue counts at the path of the sources’ orchestrator (as GET /api/v1/queue/stats)',
    description: 'Admins, and API keys with the scope queue:read (or queue:write)',
  })
  @ApiOkResponse({ type: QueueStatsResponseDto })
  getOrchestratorQueueStats(): Promise<QueueStatsResponseDto> {
    return this.admin.stats();
  }

  @Post('api/v1/queue/clean')
  @HttpCode(200)
  @ForAdminsAndKeys(ApiKeyScope.QueueWrite)
  @ApiOperation({
    summary: 'Remove finished jobs older than grace_ms from the queues (task rows stay)',
    description: 'Admins, and API keys with the scope queue:write',
  })
  @ApiBody({
    type: QueueCleanDto,
    required: false,
    examples: {
      failedOlderThanAnHour: {
        summary: 'Failed jobs older than an hour',
        value: { grace_ms: 3600000, status: 'failed' },
      },
      everything: { summary: 'Every finished job', value: {} },
    },
  })
  @ApiOkResponse({ type: QueueCleanResponseDto, description: 'How many jobs were removed, per queue and status' })
  @ApiJsonBodyErrors()
  cleanQueue(@Body() dto: QueueCleanDto): Promise<QueueCleanResult> {
    return this.admin.clean({ graceMs: dto.grace_ms ?? 0, status: dto.status, limit: dto.limit });
  }

  // The chatbot system's two routes, with its body shapes; admins only (its clients held admin tokens).
  @Get('api/queue/stats')
  @ApiAdmin()
  @ApiOperation({
    summary: 'Per queue: waiting, active, completed, failed, delayed; the running jobs; totals',
    description: "The chatbot system's shape; admins only",
  })
  @ApiOkResponse({ type: QueueSummaryResponseDto })
  async getQueueSummary(): Promise<QueueSummaryResponseDto> {
    return { status: 'success', data: await this.admin.summary() };
  }

  @Post('api/queue/clean')
  @HttpCode(200)
  @ApiAdmin()
  @ApiOperation({
    summary: 'Remove finished jobs older than grace_ms from every queue (task rows stay)',
    description: "The chatbot system's shape; admins only",
  })
  @ApiBody({
    type: QueueSummaryCleanDto,
    required: false,
    examples: {
      failedOlderThanAnHour: {
        summary: 'Failed jobs older than an hour',
        value: { grace_ms: 3600000, states: ['failed'] },
      },
      everything: { summary: 'Every finished job', value: {} },
    },
  })
  @ApiOkResponse({ type: QueueSummaryCleanResponseDto, description: 'How many jobs were removed' })
  @ApiJsonBodyErrors()
  async cleanFinishedJobs(@Body() dto: QueueSummaryCleanDto = {}): Promise<QueueSummaryCleanResponseDto> {
    const result = await this.admin.clean({ graceMs: dto.grace_ms ?? 0, statuses: dto.states });
    return { status: 'success', data: { removed: result.total_removed } };
  }

  @Post('api/v1/queue/:name/pause')
  @HttpCode(200)
  @ForAdminsAndKeys(ApiKeyScope.QueueWrite)
  @QueueNameParam()
  @ApiOperation({
    summary: 'Pause a queue: workers take no new job from it (running jobs finish)',
    description: 'Admins, and API keys with the scope queue:write',
  })
  @ApiOkResponse({ type: QueueStateDto, description: 'The queue, paused' })
  @ApiErrors([404, 'No such queue; the message names the known ones'])
  pauseQueue(@Param('name') name: string): Promise<QueueStateDto> {
    return this.admin.pause(name);
  }

  @Post('api/v1/queue/:name/resume')
  @HttpCode(200)
  @ForAdminsAndKeys(ApiKeyScope.QueueWrite)
  @QueueNameParam()
  @ApiOperation({ summary: 'Resume a paused queue', description: 'Admins, and API keys with the scope queue:write' })
  @ApiOkResponse({ type: QueueStateDto, description: 'The queue, running again' })
  @ApiErrors([404, 'No such queue; the message names the known ones'])
  resumeQueue(@Param('name') name: string): Promise<QueueStateDto> {
    return this.admin.resume(name);
  }
}
