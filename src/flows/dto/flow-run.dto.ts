import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto, NextCursorProperty } from '../../common/page-query.dto';
import type { FlowError, FlowRunStatus, FlowStepStatus } from '../entities/flow.entities';

const RUN_STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'];
const STEP_STATUSES: FlowStepStatus[] = [
  'pending',
  'running',
  'waiting',
  'completed',
  'failed',
  'skipped',
  'cancelled',
];
const STEP_KINDS = ['task', 'condition', 'http', 'delay', 'notify'];
const RUN_SOURCES = ['webhook', 'api', 'schedule'];

const RUN_ID = '7d9e2c1a-5b3f-4e8d-a6c2-9f1b0e4d3a55';

export class FlowRunSearchDto extends PageQueryDto {
  @ApiPropertyOptional({
    format: 'uuid',
    description: "Only this flow's runs",
    example: '0b7f5a52-93a1-4a38-9d6e-3f0d8c1b2a11',
  })
  @IsOptional()
  @IsUUID('all', { message: 'flow_id must be a flow id' })
  flow_id?: string;

  @ApiPropertyOptional({ enum: RUN_STATUSES, enumName: 'FlowRunStatus', example: 'failed' })
  @IsOptional()
  @IsIn(RUN_STATUSES, { message: `status must be one of ${RUN_STATUSES.join(', ')}` })
  status?: FlowRunStatus;
}

export class FlowRunCreateDto {
  @ApiPropertyOptional({
    description: "The run's trigger context (`trigger` in expressions): any JSON value",
    example: { text: 'Hello there. This is the first line.' },
  })
  @IsOptional()
  input?: unknown;
}

export class FlowErrorDto {
  @ApiProperty({ example: 'step_error' })
  code: string;

  @ApiProperty({ example: 'the task failed: provider_error' })
  message: string;

  @ApiPropertyOptional({ description: 'The step it happened in', example: 'subs' })
  step_id?: string;
}

export class FlowRunStepDto {
  @ApiProperty({ description: "The step's id in the flow", example: 'subs' })
  id: string;

  @ApiProperty({ enum: STEP_KINDS, enumName: 'FlowStepKind', example: 'task' })
  kind: string;

  @ApiProperty({ enum: STEP_STATUSES, enumName: 'FlowStepStatus', example: 'completed' })
  status: string;

  @ApiProperty({ description: 'Attempts made so far', example: 1 })
  attempts: number;

  @ApiProperty({
    description: "The step's result (a task's output, a condition's branch…)",
    nullable: true,
    example: null,
  })
  output: unknown;

  @ApiProperty({ description: 'An http step: the status, headers and body answered', nullable: true, example: null })
  response: unknown;

  @ApiProperty({ type: FlowErrorDto, nullable: true, example: null })
  error: FlowError | null;

  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'A task step: its task', example: null })
  task_id: string | null;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'A delay step: when it ends',
    example: null,
  })
  wake_at: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:01.000Z' })
  started_at: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:09.000Z' })
  finished_at: string | null;
}

export class FlowRunResponseDto {
  @ApiProperty({ format: 'uuid', example: RUN_ID })
  id: string;

  @ApiProperty({ format: 'uuid', example: '0b7f5a52-93a1-4a38-9d6e-3f0d8c1b2a11' })
  flow_id: string;

  @ApiProperty({ description: 'The version of the flow the run follows', example: 1 })
  version: number;

  @ApiProperty({ enum: RUN_STATUSES, enumName: 'FlowRunStatus', example: 'completed' })
  status: FlowRunStatus;

  @ApiProperty({ enum: RUN_SOURCES, enumName: 'FlowRunSource', description: 'What started the run', example: 'api' })
  source: string;

  @ApiProperty({ type: String, nullable: true, description: 'The step under way', example: null })
  current_step: string | null;

  @ApiProperty({ description: 'Grows by one each time the run is retried', example: 0 })
  round: number;

  @ApiProperty({ type: FlowErrorDto, nullable: true, example: null })
  error: FlowError | null;

  @ApiProperty({
    description: 'The trigger context: the input, the hook body, or {scheduled_at}',
    nullable: true,
    example: { text: 'Hello there.' },
  })
  trigger: unknown;

  @ApiPropertyOptional({ type: [FlowRunStepDto], description: 'The steps reached so far (one run only, not in lists)' })
  steps?: FlowRunStepDto[];

  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:01.000Z' })
  started_at: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:00:09.000Z' })
  finished_at: string | null;
}

export class FlowRunListDto {
  @ApiProperty({ type: [FlowRunResponseDto] })
  data: FlowRunResponseDto[];

  @NextCursorProperty()
  next_cursor: string | null;
}

export class FlowRunStartedDto {
  @ApiProperty({ format: 'uuid', example: RUN_ID })
  run_id: string;
}

/** A run started with `Prefer: wait` that ended in time: the run, and its id again as `run_id`. */
export class FlowRunFinishedDto extends FlowRunResponseDto {
  @ApiProperty({ format: 'uuid', example: RUN_ID })
  run_id: string;
}
