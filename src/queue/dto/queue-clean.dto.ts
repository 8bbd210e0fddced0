import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';

export const CLEANABLE_STATUSES = ['completed', 'failed'] as const;
export type CleanableStatus = (typeof CLEANABLE_STATUSES)[number];

export class QueueCleanDto {
  @ApiPropertyOptional({
    minimum: 0,
    default: 0,
    description: 'Only jobs finished longer ago than this (ms) are removed',
    example: 3_600_000,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  grace_ms?: number;

  @ApiPropertyOptional({
    enum: CLEANABLE_STATUSES,
    enumName: 'CleanableJobStatus',
    description: 'Default: both completed and failed',
    example: 'completed',
  })
  @IsOptional()
  @IsIn(CLEANABLE_STATUSES)
  status?: CleanableStatus;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 1_000_000,
    description: 'Most jobs removed per queue and status',
    example: 10_000,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  limit?: number;
}

export class QueueRemovedDto {
  @ApiPropertyOptional({ description: 'Completed jobs removed', example: 120 })
  completed?: number;
  @ApiPropertyOptional({ description: 'Failed jobs removed', example: 3 })
  failed?: number;
}

export class QueueCleanResponseDto {
  @ApiProperty({ example: 3_600_000 })
  grace_ms!: number;
  @ApiProperty({
    enum: CLEANABLE_STATUSES,
    enumName: 'CleanableJobStatus',
    isArray: true,
    example: ['completed', 'failed'],
  })
  statuses!: CleanableStatus[];
  @ApiProperty({
    type: 'object',
    description: 'By queue name: how many jobs of each status were removed',
    additionalProperties: { $ref: '#/components/schemas/QueueRemovedDto' },
    example: { tasks: { completed: 120, failed: 3 }, webhooks: { completed: 240, failed: 0 } },
  })
  removed!: Record<string, QueueRemovedDto>;
  @ApiProperty({ example: 363 })
  total_removed!: number;
}
