import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsEnum, IsIn, IsObject, IsOptional, IsString, IsUrl, Length } from 'class-validator';
import { TaskPriority } from '../../tasks/task.enums';
import { FLOW_EVENT_TYPES } from '../flow-events';

/** A flow as sent to POST and PUT; the steps and trigger are checked by hand (flow-definition.ts), every problem listed. */
export class FlowCreateDto {
  @ApiProperty({ minLength: 1, maxLength: 200 })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @IsString()
  @Length(0, 2000)
  description?: string;

  @ApiProperty({ description: '{type: webhook | api | schedule, secret?, require_api_key?, cron?, timezone?, every?}' })
  @IsObject()
  trigger: Record<string, unknown>;

  @ApiProperty({ description: 'The steps (CONTRACT.md "Flows")', type: 'array', items: { type: 'object' } })
  @IsArray()
  @IsObject({ each: true, message: 'steps: each step must be an object' })
  steps: Record<string, unknown>[];

  @ApiPropertyOptional({ enum: TaskPriority, default: TaskPriority.Medium })
  @IsOptional()
  @IsEnum(TaskPriority)
  priority?: TaskPriority;

  @ApiPropertyOptional()
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  webhook_url?: string;

  @ApiPropertyOptional({ enum: FLOW_EVENT_TYPES, isArray: true })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(FLOW_EVENT_TYPES.length)
  @IsIn(FLOW_EVENT_TYPES, { each: true })
  webhook_events?: string[];
}

export class FlowResponseDto {
  @ApiProperty() id: string;
  @ApiProperty() version: number;
  @ApiPropertyOptional() hook_url?: string;
  @ApiProperty() name: string;
  @ApiPropertyOptional() description: string | null;
  @ApiProperty({ description: 'Without its secret: has_secret says whether it has one' })
  trigger: Record<string, unknown>;
  @ApiProperty({ type: 'array', items: { type: 'object' } }) steps: unknown[];
  @ApiProperty({ enum: TaskPriority }) priority: TaskPriority;
  @ApiPropertyOptional() webhook_url: string | null;
  @ApiPropertyOptional() webhook_events: string[] | null;
  @ApiPropertyOptional({ type: [String] }) next_ticks?: string[];
  @ApiProperty() created_at: string;
  @ApiProperty() updated_at: string;
}

export class FlowListResponseDto {
  @ApiProperty({ type: [FlowResponseDto] }) data: FlowResponseDto[];
  @ApiPropertyOptional() next_cursor: string | null;
}
