import { applyDecorators, Controller, Get, Res } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { ApiErrors, ApiPublic } from '../common/openapi';
import { DependencyCheckDto, HealthReportDto, LivenessDto } from './dto/health-report.dto';
import { HealthReport, HealthService } from './health.service';

/** 200 healthy, or 503 with the same body and Retry-After while a dependency is down or the process shuts down. */
const ApiHealthAnswers = () =>
  applyDecorators(
    ApiOkResponse({ type: HealthReportDto, description: 'Every dependency answers' }),
    ApiServiceUnavailableResponse({
      type: HealthReportDto,
      description: 'A dependency does not answer (unhealthy), or the process is shutting down',
      headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer', example: 5 } } },
    }),
  );

/** Public, never rate limited: orchestrators' and load balancers' checks. */
@ApiTags('health')
@ApiExtraModels(DependencyCheckDto)
@ApiPublic()
@Public()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('health')
  @ApiOperation({ summary: 'Postgres, Redis (when the queues live there) and the task queue counts' })
  @ApiHealthAnswers()
  getHealth(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    return this.answer(reply, true);
  }

  // The path of the sources' media API.
  @Get('api/v1/media/health')
  @ApiOperation({ summary: 'As GET /health, at the path of the media API of the sources' })
  @ApiHealthAnswers()
  getMediaHealth(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    return this.answer(reply, true);
  }

  @Get('health/live')
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency checked)' })
  @ApiOkResponse({ type: LivenessDto, description: 'Always, while the process runs' })
  @ApiErrors([500, 'Only an unexpected error (`error_id` finds it in the log)'])
  getLiveness(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({ summary: 'Readiness: Postgres and Redis (when the queues live there) answer' })
  @ApiHealthAnswers()
  getReadiness(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    return this.answer(reply, false);
  }

  private async answer(reply: FastifyReply, withQueue: boolean): Promise<HealthReport> {
    const report = await this.health.report(withQueue);
    if (report.status !== 'healthy') void reply.status(503).header('retry-after', '5');
    return report;
  }
}
