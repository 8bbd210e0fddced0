import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TaskEventType, TaskPriority, TaskStatus, TaskType } from '../task.enums';
import { NextCursorProperty } from '../../common/page-query.dto';

const TASK_ID = '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21';
const AT = '2026-12-04T10:15:00.000Z';

export class TaskErrorDto {
  @ApiProperty({ example: 'provider_error' })
  code: string;
  @ApiProperty({ example: 'the provider answered 500' })
  message: string;
}

export class TaskCostDto {
  @ApiProperty({ example: 0.04 })
  amount: number;
  @ApiProperty({ example: 'USD' })
  currency: string;
}

export class TaskResponseDto {
  @ApiProperty({ format: 'uuid', example: TASK_ID })
  id: string;
  @ApiProperty({ enum: TaskType, enumName: 'TaskType', example: TaskType.SubtitleGeneration })
  type: TaskType;
  @ApiProperty({ enum: TaskStatus, enumName: 'TaskStatus', example: TaskStatus.Completed })
  status: TaskStatus;
  @ApiProperty({ enum: TaskPriority, enumName: 'TaskPriority', example: TaskPriority.Medium })
  priority: TaskPriority;
  @ApiProperty({ minimum: 0, maximum: 1, example: 1 })
  progress: number;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The fields the task was submitted with (secrets left out)',
    example: { text: 'Hello there.', format: 'srt' },
  })
  input: Record<string, unknown>;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description:
      'What the task made, once completed. Stored files are listed in `files` (key, url, content_type, size_bytes, ' +
      'filename, sha256); past OUTPUT_RETENTION_DAYS they are deleted and `expired_at` (ISO time) is set: the list ' +
      'stays, its links answer 410 (local storage) or 404 (S3).',
    example: { url: '/files/9b1c6f1e/subtitles.srt', format: 'srt' },
  })
  output: Record<string, unknown> | null;
  @ApiProperty({ type: TaskErrorDto, nullable: true, description: 'Why it failed; null otherwise' })
  error: TaskErrorDto | null;
  @ApiProperty({ type: String, nullable: true, description: 'The provider that ran it', example: 'subtitle-engine' })
  provider: string | null;
  @ApiProperty({ description: 'Runs so far (retries included)', example: 1 })
  attempts: number;
  @ApiProperty({ type: TaskCostDto, nullable: true, description: "The provider's price, when it tells one" })
  cost: TaskCostDto | null;
  @ApiProperty({ description: 'Answered from the result cache, without running', example: false })
  cached: boolean;
  @ApiPropertyOptional({
    description:
      "Present while queued (1 = next to run), and while processing at a provider that queues jobs (fal): the job's place in that provider's queue",
    example: 3,
  })
  queue_position?: number;
  @ApiPropertyOptional({
    description: 'A large img2vid split into parts that run side by side: how many (progress = parts done / parts)',
    example: 4,
  })
  parts?: number;
  @ApiPropertyOptional({
    format: 'uuid',
    description: 'A part of a split task: the task it belongs to',
    example: TASK_ID,
  })
  parent_id?: string;
  @ApiPropertyOptional({ description: 'A part of a split task: its place among the parts, from 0', example: 0 })
  part_index?: number;
  @ApiProperty({ type: String, nullable: true, example: 'https://example.com/hooks/media' })
  webhook_url: string | null;
  @ApiProperty({
    enum: TaskEventType,
    enumName: 'TaskEventType',
    isArray: true,
    nullable: true,
    description: 'The events sent to webhook_url; null: all',
    example: [TaskEventType.Completed, TaskEventType.Failed],
  })
  webhook_events: string[] | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, example: { order: 'A-17' } })
  metadata: Record<string, unknown> | null;
  @ApiProperty({ format: 'date-time', example: AT })
  created_at: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:15:01.000Z' })
  started_at: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2026-12-04T10:15:04.000Z' })
  completed_at: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the task asked to start; null: at once',
    example: null,
  })
  run_at: string | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Time spent waiting before the (last) run started, ms',
    example: 850,
  })
  delay_time_ms: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'Time spent running, ms', example: 3120 })
  execution_time_ms: number | null;
  @ApiProperty({ example: `/api/v1/media/tasks/${TASK_ID}` })
  status_url: string;
  @ApiProperty({ example: `/api/v1/media/tasks/${TASK_ID}/result` })
  result_url: string;
}

export class TaskListResponseDto {
  @ApiProperty({ type: [TaskResponseDto] })
  data: TaskResponseDto[];
  @NextCursorProperty()
  next_cursor: string | null;
}

export class TaskResultResponseDto {
  @ApiProperty({ format: 'uuid', example: TASK_ID })
  id: string;
  @ApiProperty({ enum: TaskStatus, enumName: 'TaskStatus', example: TaskStatus.Completed })
  status: TaskStatus;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'The output (200); absent while the task is not finished (202)',
    example: { url: '/files/9b1c6f1e/subtitles.srt', format: 'srt' },
  })
  output?: Record<string, unknown> | null;
  @ApiPropertyOptional({
    description: 'Where to poll the task (202)',
    example: `/api/v1/media/tasks/${TASK_ID}`,
  })
  status_url?: string;
}
