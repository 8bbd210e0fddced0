import { ApiProperty } from '@nestjs/swagger';
import { TaskType } from '../../tasks/task.enums';

export class ProviderHealthDto {
  @ApiProperty({ description: 'Smoothed share of successful calls (1 when nothing is known yet)', example: 0.98 })
  success_rate!: number;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Smoothed latency of successful calls, ms (null when nothing is known yet)',
    example: 840,
  })
  latency_ms!: number | null;

  @ApiProperty({ description: 'Calls under way now', example: 2 })
  in_flight!: number;

  @ApiProperty({
    enum: ['closed', 'open', 'half_open'],
    enumName: 'CircuitState',
    description: 'open: calls are refused until a trial call succeeds (half_open)',
    example: 'closed',
  })
  circuit_state!: string;

  @ApiProperty({ description: 'Calls counted', example: 120 })
  calls!: number;

  @ApiProperty({ description: 'Failed calls counted', example: 2 })
  failures!: number;
}

export class ProviderDto {
  @ApiProperty({ example: 'fal' })
  name!: string;

  @ApiProperty({ enum: TaskType, enumName: 'TaskType', isArray: true, example: [TaskType.VideoGeneration] })
  task_types!: readonly TaskType[];

  @ApiProperty({ description: 'Its keys are set (or the sandbox emulates it)', example: true })
  configured!: boolean;

  @ApiProperty({ example: 'Pika v2.2 $0.20 (720p) / $0.45 (1080p) per 5 s of video' })
  cost_model!: string;

  @ApiProperty({ description: 'Used by the quality strategy, 0–1', example: 0.8 })
  quality_score!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'Its cap of jobs at once (null: none)', example: 3 })
  max_concurrency!: number | null;

  @ApiProperty({ type: ProviderHealthDto })
  health!: ProviderHealthDto;
}

export class ProviderListDto {
  @ApiProperty({ type: [ProviderDto] })
  data!: ProviderDto[];
}

export class CostDto {
  @ApiProperty({ example: 1.25 })
  amount!: number;

  @ApiProperty({ enum: ['USD'], enumName: 'Currency', example: 'USD' })
  currency!: string;
}

export class StatisticsDto {
  @ApiProperty({ enum: ['own', 'all'], enumName: 'ListScope', example: 'own' })
  scope!: 'own' | 'all';

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Tasks by status',
    example: { completed: 40, failed: 2, queued: 3 },
  })
  tasks_by_status!: Record<string, number>;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'completed / (completed + failed); null before any ended',
    example: 0.952,
  })
  success_rate!: number | null;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'number' },
    description: 'Mean started → completed time by task type, ms',
    example: { image_generation: 4200, img2vid: 38000 },
  })
  mean_duration_ms_by_type!: Record<string, number>;

  @ApiProperty({
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/CostDto' },
    description: 'Total cost by provider',
    example: { fal: { amount: 1.25, currency: 'USD' } },
  })
  total_cost_by_provider!: Record<string, CostDto>;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Queued tasks by priority',
    example: { high: 1, medium: 2 },
  })
  queued_by_priority!: Record<string, number>;

  @ApiProperty({
    type: 'object',
    additionalProperties: { $ref: '#/components/schemas/ProviderHealthDto' },
    description: 'By provider name',
    example: {
      fal: { success_rate: 0.98, latency_ms: 840, in_flight: 2, circuit_state: 'closed', calls: 120, failures: 2 },
    },
  })
  provider_health!: Record<string, ProviderHealthDto>;
}
