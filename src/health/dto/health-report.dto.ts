import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class DependencyCheckDto {
  @ApiProperty({ enum: ['up', 'down'], enumName: 'DependencyStatus', example: 'up' })
  status!: 'up' | 'down';
}

/** The task queue's counts, as `GET /health` shows them. */
export class HealthQueueDto {
  @ApiProperty({ description: 'Task jobs ready to run', example: 12 })
  queued!: number;
  @ApiProperty({ description: 'Task jobs a worker is running', example: 4 })
  processing!: number;
  @ApiProperty({ description: 'Finished task jobs still kept', example: 310 })
  completed!: number;
  @ApiProperty({ description: 'Failed task jobs still kept', example: 7 })
  failed!: number;
  @ApiProperty({ description: 'Task jobs waiting for their time', example: 3 })
  delayed!: number;
  @ApiProperty({ description: 'Jobs running now (as processing)', example: 4 })
  activeWorkers!: number;
  @ApiProperty({ description: 'Free places: workers × WORKER_CONCURRENCY − running', example: 12 })
  availableWorkers!: number;
  @ApiProperty({ description: 'Worker processes connected to the queue', example: 2 })
  workers!: number;
}

/**
 * The health answer: the terminus checks of each dependency (up or down, never the reason), and, on `GET /health`
 * when they are up, the task queue's counts.
 */
export class HealthReportDto {
  @ApiProperty({
    enum: ['healthy', 'unhealthy', 'shutting_down'],
    enumName: 'HealthStatus',
    description: 'healthy answers 200; unhealthy (a dependency is down) and shutting_down (after SIGTERM) answer 503',
    example: 'healthy',
  })
  status!: 'healthy' | 'unhealthy' | 'shutting_down';

  @ApiProperty({ description: 'The process role (APP_ROLE)', example: 'api' })
  role!: string;

  @ApiProperty({ description: 'Seconds since the process started', example: 3600 })
  uptime_s!: number;

  @ApiProperty({
    type: 'object',
    description: 'By dependency: postgres, and redis when the queues live there',
    additionalProperties: { $ref: '#/components/schemas/DependencyCheckDto' },
    example: { postgres: { status: 'up' }, redis: { status: 'up' } },
  })
  checks!: Record<string, DependencyCheckDto>;

  @ApiPropertyOptional({ type: HealthQueueDto, description: 'GET /health only, when the dependencies are up' })
  queue?: HealthQueueDto;
}

export class LivenessDto {
  @ApiProperty({ enum: ['ok'], enumName: 'LivenessStatus', example: 'ok' })
  status!: 'ok';
}
