import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { HealthReport, HealthService } from './health.service';

@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get(['health', 'api/v1/media/health'])
  @ApiOperation({ summary: 'Postgres, Redis (when the queues live there) and queue counts' })
  @ApiOkResponse({
    description: '{status: "healthy", queue: {queued, processing, completed, activeWorkers, availableWorkers}, checks}',
  })
  @ApiServiceUnavailableResponse({ description: 'A dependency does not answer' })
  async overall(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const report = await this.health.report(true);
    if (report.status !== 'healthy') void reply.status(503).header('retry-after', '5');
    return report;
  }

  @Get('health/live')
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency checked)' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({ summary: 'Readiness: Postgres and Redis (when the queues live there) answer' })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const report = await this.health.report(false);
    if (report.status !== 'healthy') void reply.status(503).header('retry-after', '5');
    return report;
  }
}
