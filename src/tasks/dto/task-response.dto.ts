import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TaskPriority, TaskStatus, TaskType } from '../task.enums';

export class TaskErrorDto {
  @ApiProperty({ example: 'timeout' })
  code: string;
  @ApiProperty()
  message: string;
}

export class TaskCostDto {
  @ApiProperty({ example: 0.04 })
  amount: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
}

export class TaskResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ enum: TaskType })
  type: TaskType;
  @ApiProperty({ enum: TaskStatus })
  status: TaskStatus;
  @ApiProperty({ enum: TaskPriority })
  priority: TaskPriority;
  @ApiProperty({ minimum: 0, maximum: 1 })
  progress: number;
  @ApiProperty({ type: 'object', additionalProperties: true })
  input: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  output: Record<string, unknown> | null;
  @ApiProperty({ type: TaskErrorDto, nullable: true })
  error: TaskErrorDto | null;
  @ApiProperty({ nullable: true, example: 'subtitle-engine' })
  provider: string | null;
  @ApiProperty()
  attempts: number;
  @ApiProperty({ type: TaskCostDto, nullable: true })
  cost: TaskCostDto | null;
  @ApiProperty()
  cached: boolean;
  @ApiPropertyOptional({
    description:
      "Present while queued (1 = next to run), and while processing at a provider that queues jobs (fal): the job's place in that provider's queue",
  })
  queue_position?: number;
  @ApiPropertyOptional({
    description: 'A large img2vid split into parts that run side by side: how many (progress = parts done / parts)',
  })
  parts?: number;
  @ApiPropertyOptional({ format: 'uuid', description: 'A part of a split task: the task it belongs to' })
  parent_id?: string;
  @ApiPropertyOptional({ description: 'A part of a split task: its place among the parts, from 0' })
  part_index?: number;
  @ApiProperty({ nullable: true })
  webhook_url: string | null;
  @ApiProperty({ nullable: true, type: [String] })
  webhook_events: string[] | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  metadata: Record<string, unknown> | null;
  @ApiProperty({ format: 'date-time' })
  created_at: string;
  @ApiProperty({ format: 'date-time', nullable: true })
  started_at: string | null;
  @ApiProperty({ format: 'date-time', nullable: true })
  completed_at: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, description: 'When the task asked to start; null: at once' })
  run_at: string | null;
  @ApiProperty({ nullable: true, description: 'Time spent waiting before the (last) run started, ms' })
  delay_time_ms: number | null;
  @ApiProperty({ nullable: true, description: 'Time spent running, ms' })
  execution_time_ms: number | null;
  @ApiProperty({ example: '/api/v1/media/tasks/9b1c…' })
  status_url: string;
  @ApiProperty({ example: '/api/v1/media/tasks/9b1c…/result' })
  result_url: string;
}

export class TaskListResponseDto {
  @ApiProperty({ type: [TaskResponseDto] })
  data: TaskResponseDto[];
  @ApiProperty({ nullable: true, description: 'Pass as `cursor` for the next page; null on the last page' })
  next_cursor: string | null;
}

export class TaskResultResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ enum: TaskStatus })
  status: TaskStatus;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  output?: Record<string, unknown> | null;
  @ApiPropertyOptional()
  status_url?: string;
}
