import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Allow, IsArray, IsEnum, IsOptional, IsString, IsUrl, Length } from 'class-validator';
import { TaskEventType, TaskPriority, TaskType } from '../../tasks/task.enums';
import { IsWebhookSecret } from '../../webhooks/webhook-secret';
import { HTTP_URL_OPTIONS, IsPlainObject, MaxJsonBytes } from '../../tasks/dto/validators';

/** The contract's cap on the items of one batch. */
export const MAX_BATCH_ITEMS = 50;

/**
 * One item of a batch: its type and that type's create body. Only the envelope is checked here; the item's fields
 * (and `input_data`) are validated by the type's own create DTO, exactly as its endpoint would.
 */
export class BatchItemDto {
  @ApiProperty({ enum: TaskType, enumName: 'TaskType', example: TaskType.SubtitleGeneration })
  @IsEnum(TaskType)
  task_type: TaskType;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: "The fields of this type's create endpoint (e.g. {text} for subtitle_generation)",
    example: { text: 'Hello there. Welcome to the show.' },
  })
  @IsPlainObject()
  input_data: Record<string, unknown>;

  @ApiPropertyOptional({ enum: TaskPriority, enumName: 'TaskPriority', example: TaskPriority.High })
  @Allow()
  priority?: TaskPriority;

  @ApiPropertyOptional({
    description: "Receives this task's signed lifecycle events",
    example: 'https://example.com/hooks/media',
  })
  @Allow()
  webhook_url?: string;

  @ApiPropertyOptional({
    writeOnly: true,
    description: "Signs this task's webhooks (whsec_<base64> or 16–256 characters)",
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  })
  @Allow()
  webhook_secret?: string;

  @ApiPropertyOptional({
    enum: TaskEventType,
    enumName: 'TaskEventType',
    isArray: true,
    description: 'The events to send (all when absent)',
    example: [TaskEventType.Completed, TaskEventType.Failed],
  })
  @Allow()
  webhook_events?: TaskEventType[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { line: 3 } })
  @Allow()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    format: 'date-time',
    description: 'Start this task later (see run_at of any create)',
    example: '2026-12-05T08:00:00Z',
  })
  @Allow()
  run_at?: string;
}

/** Item fields that go to the type's DTO beside `input_data` (checked there, reported under their own names). */
export const BATCH_ITEM_FIELDS = [
  'priority',
  'webhook_url',
  'webhook_secret',
  'webhook_events',
  'metadata',
  'run_at',
] as const;

/** The object form of a batch (a bare array of items is accepted too). */
export class BatchCreateDto {
  @ApiProperty({ type: [BatchItemDto], maxItems: MAX_BATCH_ITEMS })
  @IsArray()
  tasks: unknown[];

  @ApiPropertyOptional({
    description: 'Receives batch.completed when every task has finished',
    example: 'https://example.com/hooks/batches',
  })
  @IsOptional()
  @IsUrl(HTTP_URL_OPTIONS, { message: 'webhook_url must be an http(s) URL' })
  @Length(1, 2048)
  webhook_url?: string;

  @ApiPropertyOptional({
    description: 'Signs the batch.completed webhook (write-only)',
    writeOnly: true,
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  })
  @IsOptional()
  @IsString()
  @Length(16, 256)
  @IsWebhookSecret()
  webhook_secret?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'Your data, echoed back (≤ 16 KiB)',
    example: { campaign: 'winter' },
  })
  @IsOptional()
  @IsPlainObject()
  @MaxJsonBytes(16 * 1024)
  metadata?: Record<string, unknown>;
}
