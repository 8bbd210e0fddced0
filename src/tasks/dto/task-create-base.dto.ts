import { ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsEnum,
  IsIn,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
} from 'class-validator';
import { IsWebhookSecret } from '../../webhooks/webhook-secret';
import { CacheMode, RoutingStrategy, TaskEventType, TaskPriority } from '../task.enums';
import { HTTP_URL_OPTIONS, IsPlainObject, IsRunAt, MaxJsonBytes, RUN_AT_MAX_DAYS } from './validators';

/** Fields every create endpoint accepts besides its own input. */
export abstract class TaskCreateBaseDto {
  @ApiPropertyOptional({ description: 'Receives signed lifecycle events', example: 'https://example.com/hooks/media' })
  @IsOptional()
  @IsUrl(HTTP_URL_OPTIONS, { message: 'webhook_url must be an http(s) URL' })
  @Length(1, 2048)
  webhook_url?: string;

  @ApiPropertyOptional({ description: "Signs this task's webhooks (write-only: never returned)", writeOnly: true })
  @IsOptional()
  @IsString()
  @Length(16, 256)
  @IsWebhookSecret()
  webhook_secret?: string;

  @ApiPropertyOptional({
    enum: TaskEventType,
    isArray: true,
    description: 'Only these events are delivered (default all)',
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10)
  @ArrayUnique()
  @IsEnum(TaskEventType, { each: true })
  webhook_events?: TaskEventType[];

  @ApiPropertyOptional({ enum: TaskPriority, default: TaskPriority.Medium })
  @IsOptional()
  @IsEnum(TaskPriority)
  priority?: TaskPriority;

  @ApiPropertyOptional({ description: 'Pin one provider by name (see GET /api/v1/media/providers)' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'provider must be a provider name such as "subtitle-engine"' })
  provider?: string;

  @ApiPropertyOptional({ enum: RoutingStrategy })
  @IsOptional()
  @IsEnum(RoutingStrategy)
  strategy?: RoutingStrategy;

  @ApiPropertyOptional({ enum: CacheMode, default: CacheMode.Use })
  @IsOptional()
  @IsIn(Object.values(CacheMode))
  cache?: CacheMode;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'Your data, echoed back (≤ 16 KiB)' })
  @IsOptional()
  @IsPlainObject()
  @MaxJsonBytes(16 * 1024)
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    format: 'date-time',
    description: `Start later: the task stays queued until this time (ISO 8601 with a zone, at most ${RUN_AT_MAX_DAYS} days ahead)`,
    example: '2030-01-01T09:00:00Z',
  })
  @IsOptional()
  @IsRunAt()
  run_at?: string;
}

/** The names above, which are not part of a task's input. */
export const COMMON_FIELDS = [
  'webhook_url',
  'webhook_secret',
  'webhook_events',
  'priority',
  'provider',
  'strategy',
  'cache',
  'metadata',
  'run_at',
] as const;
