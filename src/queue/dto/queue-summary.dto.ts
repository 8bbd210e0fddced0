import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayUnique, IsArray, IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { CLEANABLE_STATUSES, CleanableStatus } from './queue-clean.dto';

/** The counts of one queue as the chatbot system's `/api/queue/stats` gave them (waiting includes prioritized). */
export class QueueSummaryCountsDto {
  @ApiProperty({ description: 'Ready to run, with or without a priority' })
  waiting!: number;
  @ApiProperty()
  active!: number;
  @ApiProperty()
  completed!: number;
  @ApiProperty()
  failed!: number;
  @ApiProperty()
  delayed!: number;
}

export class QueueSummaryTotalsDto extends QueueSummaryCountsDto {
  @ApiProperty({ description: 'The five counts added up' })
  total!: number;
}

export class ActiveJobDto {
  @ApiProperty()
  queue!: string;
  @ApiProperty()
  id!: string;
  @ApiProperty({ example: 'task.run' })
  name!: string;
  @ApiProperty({ description: 'Attempts made before this one' })
  attempts_made!: number;
  @ApiProperty({ format: 'date-time', nullable: true })
  started_at!: string | null;
}

export class QueueSummaryDataDto {
  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/QueueSummaryCountsDto' } })
  queues!: Record<string, QueueSummaryCountsDto>;
  @ApiProperty({ type: [ActiveJobDto], description: 'The running jobs (at most 50), longest running first' })
  activeJobs!: ActiveJobDto[];
  @ApiProperty({ type: QueueSummaryTotalsDto })
  summary!: QueueSummaryTotalsDto;
}

export class QueueSummaryResponseDto {
  @ApiProperty({ enum: ['success'] })
  status!: 'success';
  @ApiProperty({ type: QueueSummaryDataDto })
  data!: QueueSummaryDataDto;
}

/** `POST /api/queue/clean`, as the chatbot system took it. */
export class QueueSummaryCleanDto {
  @ApiPropertyOptional({ minimum: 0, default: 0, description: 'Only jobs finished longer ago than this are removed' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(365 * 86_400_000)
  grace_ms?: number;

  @ApiPropertyOptional({ enum: CLEANABLE_STATUSES, isArray: true, description: 'Default: completed and failed' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(CLEANABLE_STATUSES.length)
  @ArrayUnique()
  @IsIn(CLEANABLE_STATUSES, { each: true, message: `states must hold only ${CLEANABLE_STATUSES.join(' or ')}` })
  states?: CleanableStatus[];
}
