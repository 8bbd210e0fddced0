import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';

export const CLEANABLE_STATUSES = ['completed', 'failed'] as const;
export type CleanableStatus = (typeof CLEANABLE_STATUSES)[number];

export class QueueCleanDto {
  @ApiPropertyOptional({ minimum: 0, default: 0, description: 'Only jobs finished longer ago than this are removed' })
  @IsOptional()
  @IsInt()
  @Min(0)
  grace_ms?: number;

  @ApiPropertyOptional({ enum: CLEANABLE_STATUSES, description: 'Default: both completed and failed' })
  @IsOptional()
  @IsIn(CLEANABLE_STATUSES)
  status?: CleanableStatus;

  @ApiPropertyOptional({ minimum: 1, maximum: 1_000_000, description: 'Most jobs removed per queue and status' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  limit?: number;
}
