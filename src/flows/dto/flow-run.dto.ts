import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto';
import type { FlowError, FlowRunStatus } from '../entities/flow.entities';

const RUN_STATUSES = ['queued', 'running', 'waiting', 'completed', 'failed', 'cancelled'];

export class FlowRunSearchDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'flow_id must be a flow id' })
  flow_id?: string;

  @ApiPropertyOptional({ enum: RUN_STATUSES })
  @IsOptional()
  @IsIn(RUN_STATUSES, { message: `status must be one of ${RUN_STATUSES.join(', ')}` })
  status?: FlowRunStatus;
}

export class FlowRunCreateDto {
  @ApiPropertyOptional({ description: "The run's trigger context (`trigger` in expressions)" })
  @IsOptional()
  input?: unknown;
}

export class FlowRunStepDto {
  @ApiProperty() id: string;
  @ApiProperty() kind: string;
  @ApiProperty() status: string;
  @ApiProperty() attempts: number;
  @ApiPropertyOptional() output: unknown;
  @ApiPropertyOptional() response: unknown;
  @ApiPropertyOptional() error: FlowError | null;
  @ApiPropertyOptional() task_id: string | null;
  @ApiPropertyOptional() wake_at: string | null;
  @ApiPropertyOptional() started_at: string | null;
  @ApiPropertyOptional() finished_at: string | null;
}

export class FlowRunResponseDto {
  @ApiProperty() id: string;
  @ApiProperty() flow_id: string;
  @ApiProperty() version: number;
  @ApiProperty({ enum: RUN_STATUSES }) status: FlowRunStatus;
  @ApiProperty() source: string;
  @ApiPropertyOptional() current_step: string | null;
  @ApiProperty() round: number;
  @ApiPropertyOptional() error: FlowError | null;
  @ApiPropertyOptional() trigger: unknown;
  @ApiPropertyOptional({ type: [FlowRunStepDto] }) steps?: FlowRunStepDto[];
  @ApiProperty() created_at: string;
  @ApiPropertyOptional() started_at: string | null;
  @ApiPropertyOptional() finished_at: string | null;
}

export class FlowRunListDto {
  @ApiProperty({ type: [FlowRunResponseDto] }) data: FlowRunResponseDto[];
  @ApiPropertyOptional() next_cursor: string | null;
}

export class FlowRunStartedDto {
  @ApiProperty() run_id: string;
}
