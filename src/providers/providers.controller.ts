import { Controller, Get, Query } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ApiAuthenticated, ApiErrors } from '../common/openapi';
import { ScopeQueryDto } from '../tasks/dto/task-search.dto';
import { coversAllUsers } from '../tasks/task.mapper';
import { TasksRepository } from '../tasks/tasks.repository';
import { CostDto, ProviderHealthDto, ProviderListDto, StatisticsDto } from './dto/provider.dto';
import { ProviderRegistry } from './provider.registry';

@ApiTags('providers')
@ApiAuthenticated()
@ApiExtraModels(CostDto, ProviderHealthDto)
@Controller('api/v1/media')
export class ProvidersController {
  constructor(
    private readonly registry: ProviderRegistry,
    private readonly tasks: TasksRepository,
  ) {}

  @Get('providers')
  @ApiOperation({ summary: 'Every adapter: task types, configured or not, cost model, quality score, live health' })
  @ApiOkResponse({ type: ProviderListDto })
  async listProviders(): Promise<ProviderListDto> {
    const data = await Promise.all(
      this.registry.list().map(async (p) => {
        const health = await this.registry.healthOf(p.name);
        return {
          name: p.name,
          task_types: p.taskTypes,
          configured: p.isConfigured(),
          cost_model: p.costModel,
          quality_score: p.qualityScore,
          max_concurrency: this.registry.capOf(p.name) ?? null,
          health: {
            success_rate: health.successRate,
            latency_ms: health.latencyMs,
            in_flight: health.inFlight,
            circuit_state: health.circuit,
            calls: health.calls,
            failures: health.failures,
          },
        };
      }),
    );
    return { data };
  }

  @Get('statistics')
  @ApiOperation({
    summary: 'Success rate, mean duration by type, cost by provider, queued by priority, provider health',
    description: "Your tasks; scope=all: every user's (admins only)",
  })
  @ApiOkResponse({ type: StatisticsDto })
  @ApiErrors(
    [400, 'scope is neither own nor all'],
    [403, 'scope=all from a non-admin, or an API key without the scope `tasks`'],
  )
  async getStatistics(@CurrentUser() user: AuthUser, @Query() query: ScopeQueryDto): Promise<StatisticsDto> {
    const stats = await this.tasks.statistics(coversAllUsers(user, query.scope) ? undefined : user.id);
    const completed = stats.byStatus.completed ?? 0;
    const failed = stats.byStatus.failed ?? 0;
    const providers = await this.listProviders();
    return {
      scope: query.scope ?? 'own',
      tasks_by_status: stats.byStatus,
      success_rate: completed + failed === 0 ? null : Math.round((completed / (completed + failed)) * 1000) / 1000,
      mean_duration_ms_by_type: stats.meanDurationMsByType,
      total_cost_by_provider: Object.fromEntries(
        Object.entries(stats.costByProvider).map(([p, amount]) => [
          p,
          { amount: Math.round(amount * 1e6) / 1e6, currency: 'USD' },
        ]),
      ),
      queued_by_priority: stats.queuedByPriority,
      provider_health: Object.fromEntries(providers.data.map((p) => [p.name, p.health])),
    };
  }
}
