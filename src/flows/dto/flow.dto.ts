import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsEnum, IsIn, IsObject, IsOptional, IsString, IsUrl, Length } from 'class-validator';
import { TaskPriority } from '../../tasks/task.enums';
import { FLOW_EVENT_TYPES } from '../flow-events';
import { NextCursorProperty } from '../../common/page-query.dto';

const TRIGGER_EXAMPLE = { type: 'webhook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
const STEPS_EXAMPLE = [
  { id: 'subs', kind: 'task', task_type: 'subtitle_generation', input: { text: '{{ trigger.text }}' } },
  { id: 'check', kind: 'condition', if: "steps.subs.status = 'completed'", then: 'tell', else: 'end' },
  { id: 'tell', kind: 'notify', url: 'https://example.com/hook', body: { srt: '{{ steps.subs.output }}' } },
];

/** A flow as sent to POST and PUT; the steps and trigger are checked by hand (flow-definition.ts), every problem listed. */
export class FlowCreateDto {
  @ApiProperty({ minLength: 1, maxLength: 200, example: 'caption chain' })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ maxLength: 2000, example: 'Subtitles for each text received, sent on when they are made' })
  @IsOptional()
  @IsString()
  @Length(0, 2000)
  description?: string;

  @ApiProperty({
    description:
      'What starts a run: `{type: "webhook", secret?, require_api_key?, event_id_header?}` (a hook at /hooks/{hook_id}), ' +
      '`{type: "api"}` (POST /api/v1/flows/{id}/runs) or `{type: "schedule", cron, timezone?}` | `{type: "schedule", every}`',
    type: 'object',
    additionalProperties: true,
    example: TRIGGER_EXAMPLE,
  })
  @IsObject()
  trigger: Record<string, unknown>;

  @ApiProperty({
    description:
      'The steps, run in order unless a step says where to go next. `kind`: task (task_type, input), condition (if, ' +
      'then, else), http (method, url, headers, body, timeout_ms), delay (seconds | until), notify (url, body, ' +
      'secret); each may have next, attempts, backoff_ms, timeout_ms, on_error. Expressions are JSONata in `{{ }}`.',
    type: 'array',
    items: { type: 'object', additionalProperties: true },
    example: STEPS_EXAMPLE,
  })
  @IsArray()
  @IsObject({ each: true, message: 'steps: each step must be an object' })
  steps: Record<string, unknown>[];

  @ApiPropertyOptional({
    enum: TaskPriority,
    enumName: 'TaskPriority',
    default: TaskPriority.Medium,
    description: "The priority of the runs' tasks",
  })
  @IsOptional()
  @IsEnum(TaskPriority)
  priority?: TaskPriority;

  @ApiPropertyOptional({
    description: "Where the run's events are POSTed, signed",
    example: 'https://example.com/flows',
  })
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  webhook_url?: string;

  @ApiPropertyOptional({
    enum: FLOW_EVENT_TYPES,
    enumName: 'FlowEventType',
    isArray: true,
    description: 'The events sent to webhook_url (default: all)',
    example: ['flow.completed', 'flow.failed'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(FLOW_EVENT_TYPES.length)
  @IsIn(FLOW_EVENT_TYPES, { each: true })
  webhook_events?: string[];
}

/** Bodies of POST /api/v1/flows and PUT /api/v1/flows/{id}, one per kind of trigger. */
export const FLOW_BODY_EXAMPLES = {
  webhook: {
    summary: 'Started by a signed inbound hook',
    value: {
      name: 'caption chain',
      trigger: TRIGGER_EXAMPLE,
      steps: STEPS_EXAMPLE,
      webhook_url: 'https://example.com/flows',
    },
  },
  schedule: {
    summary: 'Started every morning',
    value: {
      name: 'daily digest',
      trigger: { type: 'schedule', cron: '0 8 * * *', timezone: 'Europe/Lisbon' },
      steps: [{ id: 'fetch', kind: 'http', method: 'GET', url: 'https://example.com/today.json' }],
      priority: 'low',
    },
  },
};

export class FlowResponseDto {
  @ApiProperty({ format: 'uuid', example: '0b7f5a52-93a1-4a38-9d6e-3f0d8c1b2a11' })
  id: string;

  @ApiProperty({ description: 'Grows by one on each PUT; a run keeps the version it started with', example: 1 })
  version: number;

  @ApiPropertyOptional({
    description: 'The inbound hook of a webhook trigger',
    example: '/hooks/pQ3v9uXk2b7LwYc1Zr8sTn4eHd6JmA0f',
  })
  hook_url?: string;

  @ApiProperty({ example: 'caption chain' })
  name: string;

  @ApiProperty({ type: String, nullable: true, example: null })
  description: string | null;

  @ApiProperty({
    description: 'The trigger without its secret: `has_secret` says whether it has one',
    type: 'object',
    additionalProperties: true,
    example: { type: 'webhook', has_secret: true },
  })
  trigger: Record<string, unknown>;

  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true }, example: STEPS_EXAMPLE })
  steps: unknown[];

  @ApiProperty({ enum: TaskPriority, enumName: 'TaskPriority', example: TaskPriority.Medium })
  priority: TaskPriority;

  @ApiProperty({ type: String, nullable: true, example: 'https://example.com/flows' })
  webhook_url: string | null;

  @ApiProperty({
    enum: FLOW_EVENT_TYPES,
    enumName: 'FlowEventType',
    isArray: true,
    nullable: true,
    example: null,
    description: 'null: every event',
  })
  webhook_events: string[] | null;

  @ApiPropertyOptional({
    type: [String],
    description: 'A schedule trigger: its next ticks (ISO 8601), counted from now',
    example: ['2027-01-01T08:00:00.000Z', '2027-01-02T08:00:00.000Z'],
  })
  next_ticks?: string[];

  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  updated_at: string;
}

export class FlowListResponseDto {
  @ApiProperty({ type: [FlowResponseDto] })
  data: FlowResponseDto[];

  @NextCursorProperty()
  next_cursor: string | null;
}
