import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayUnique, IsArray, IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { QueueName } from '../queue.constants';
import { CLEANABLE_STATUSES, CleanableStatus } from './queue-clean.dto';

/** The counts of one queue as the chatbot system's `/api/queue/stats` gave them (waiting includes prioritized). */
export class QueueSummaryCountsDto {
  @ApiProperty({ description: 'Ready to run, with or without a priority', example: 12 })
  waiting!: number;
  @ApiProperty({ example: 4 })
  active!: number;
  @ApiProperty({ example: 310 })
  completed!: number;
  @ApiProperty({ example: 7 })
  failed!: number;
  @ApiProperty({ example: 3 })
  delayed!: number;
}

export class QueueSummaryTotalsDto extends QueueSummaryCountsDto {
  @ApiProperty({ description: 'The five counts added up', example: 336 })
  total!: number;
}

export class ActiveJobDto {
  @ApiProperty({ enum: QueueName, enumName: 'QueueName', example: QueueName.Tasks })
  queue!: string;
  @ApiProperty({
    description: "The job's id (a task's job id is the task's id)",
    example: '4f1c2b9e-8a7d-4c3b-9e21-5d6f7a8b9c0d',
  })
  id!: string;
  @ApiProperty({ example: 'task.run' })
  name!: string;
  @ApiProperty({ description: 'Attempts made before this one', example: 0 })
  attempts_made!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:00.000Z' })
  started_at!: string | null;
}

export class QueueSummaryDataDto {
  @ApiProperty({
    type: 'object',
    description: 'By queue name',
    additionalProperties: { $ref: '#/components/schemas/QueueSummaryCountsDto' },
    example: { tasks: { waiting: 12, active: 4, completed: 310, failed: 7, delayed: 3 } },
  })
  queues!: Record<string, QueueSummaryCountsDto>;
  @ApiProperty({ type: [ActiveJobDto], description: 'The running jobs (at most 50), longest running first' })
  activeJobs!: ActiveJobDto[];
  @ApiProperty({ type: QueueSummaryTotalsDto })
  summary!: QueueSummaryTotalsDto;
}

export class QueueSummaryResponseDto {
  @ApiProperty({ enum: ['success'], enumName: 'SuccessStatus', example: 'success' })
  status!: 'success';
  @ApiProperty({ type: QueueSummaryDataDto })
  data!: QueueSummaryDataDto;
}

/** `POST /api/queue/clean`, as the chatbot system took it. */
export class QueueSummaryCleanDto {
  @ApiPropertyOptional({
    minimum: 0,
    maximum: 365 * 86_400_000,
    default: 0,
    description: 'Only jobs finished longer ago than this (ms) are removed',
    example: 3_600_000,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(365 * 86_400_000)
  grace_ms?: number;

  @ApiPropertyOptional({
    enum: CLEANABLE_STATUSES,
    enumName: 'CleanableJobStatus',
    isArray: true,
    description: 'Default: completed and failed',
    example: ['failed'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(CLEANABLE_STATUSES.length)
  @ArrayUnique()
  @IsIn(CLEANABLE_STATUSES, { each: true, message: `states must hold only ${CLEANABLE_STATUSES.join(' or ')}` })
  states?: CleanableStatus[];
}

export class QueueSummaryRemovedDto {
  @ApiProperty({ description: 'Jobs removed from every queue', example: 363 })
  removed!: number;
}

export class QueueSummaryCleanResponseDto {
  @ApiProperty({ enum: ['success'], enumName: 'SuccessStatus', example: 'success' })
  status!: 'success';
  @ApiProperty({ type: QueueSummaryRemovedDto })
  data!: QueueSummaryRemovedDto;
}
