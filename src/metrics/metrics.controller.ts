import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { ApiErrors, ApiPublic } from '../common/openapi';
import { MetricsTokenGuard } from './metrics-token.guard';
import { MetricsService } from './metrics.service';

const EXPOSITION_EXAMPLE =
  '# HELP media_tasks_created_total Tasks submitted, by type, provider (none until one runs it) and status\n' +
  '# TYPE media_tasks_created_total counter\n' +
  'media_tasks_created_total{type="image_generation",provider="none",status="queued"} 3\n';

// No user token: Prometheus holds none. With METRICS_TOKEN set, the scrape sends it as a bearer token of its own.
@ApiTags('metrics')
@ApiPublic()
@Public()
@UseGuards(MetricsTokenGuard)
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics of this process',
    description:
      'Public unless METRICS_TOKEN is set; then `Authorization: Bearer <METRICS_TOKEN>` (that token, not a user JWT). ' +
      'Scrape every process and sum: each counts the transitions it makes.',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({
    description: 'Prometheus text exposition format 0.0.4',
    content: { 'text/plain; version=0.0.4': { schema: { type: 'string' }, example: EXPOSITION_EXAMPLE } },
  })
  @ApiErrors(
    [401, 'METRICS_TOKEN is set and the bearer token is missing or wrong'],
    [429, 'Too many requests from this address were refused for want of valid credentials'],
  )
  async getMetrics(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    void reply.header('content-type', this.metrics.contentType);
    return this.metrics.render();
  }
}
