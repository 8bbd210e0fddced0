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

  @ApiPropertyOptional({
    description:
      "Signs this task's webhooks (write-only: never returned): whsec_<base64 of 24–64 bytes>, or 16–256 characters",
    writeOnly: true,
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  })
  @IsOptional()
  @IsString()
  @Length(16, 256)
  @IsWebhookSecret()
  webhook_secret?: string;

  @ApiPropertyOptional({
    enum: TaskEventType,
    enumName: 'TaskEventType',
    isArray: true,
    description: 'Only these events are delivered (default all)',
    example: [TaskEventType.Completed, TaskEventType.Failed],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10)
  @ArrayUnique()
  @IsEnum(TaskEventType, { each: true })
  webhook_events?: TaskEventType[];

  @ApiPropertyOptional({
    enum: TaskPriority,
    enumName: 'TaskPriority',
    default: TaskPriority.Medium,
    example: TaskPriority.High,
  })
  @IsOptional()
  @IsEnum(TaskPriority)
  priority?: TaskPriority;

  @ApiPropertyOptional({
    description: 'Pin one provider by name (see GET /api/v1/media/providers)',
    example: 'subtitle-engine',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'provider must be a provider name such as "subtitle-engine"' })
  provider?: string;

  @ApiPropertyOptional({
    enum: RoutingStrategy,
    enumName: 'RoutingStrategy',
    description: 'How to choose among the providers that can run it',
    example: RoutingStrategy.Quality,
  })
  @IsOptional()
  @IsEnum(RoutingStrategy)
  strategy?: RoutingStrategy;

  @ApiPropertyOptional({
    enum: CacheMode,
    enumName: 'CacheMode',
    default: CacheMode.Use,
    description: 'bypass: run even when the same request has a cached result',
    example: CacheMode.Use,
  })
  @IsOptional()
  @IsIn(Object.values(CacheMode))
  cache?: CacheMode;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'Your data, echoed back (≤ 16 KiB)',
    example: { order: 'A-17' },
  })
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
