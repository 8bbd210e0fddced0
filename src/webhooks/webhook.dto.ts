import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageQueryDto } from '../common/page-query.dto';
import type { DeliveryRow, DeliveryStatistics } from './webhook-deliveries.repository';

export class LatencyDto {
  @ApiProperty({ type: Number, nullable: true, example: 180 })
  mean: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 120 })
  p50: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 450 })
  p95: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 1200 })
  p99: number | null;
}

export class AttemptDurationDto {
  @ApiProperty({ type: Number, nullable: true, example: 95 })
  mean: number | null;
}

export class DeliveryAttemptDto {
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:15:31.000Z' })
  at: string;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: "The receiver's HTTP status; null when none came (timeout, refused)",
    example: 200,
  })
  status_code: number | null;
  @ApiProperty({ example: 84 })
  duration_ms: number;
  @ApiProperty({ type: String, nullable: true, example: null })
  error: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The first 512 characters of the answer', example: 'ok' })
  response_excerpt: string | null;
}

export class DeliveryDto {
  @ApiProperty({
    format: 'uuid',
    description: 'Also the webhook-id header: the same on every attempt and replay',
    example: '2b4f6a8c-1d3e-4f5a-8b7c-9d0e1f2a3b4c',
  })
  id: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, example: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21' })
  task_id: string | null;
  @ApiProperty({
    type: String,
    format: 'uuid',
    nullable: true,
    description: 'The flow run whose event or notify step made it',
    example: null,
  })
  flow_run_id: string | null;
  @ApiProperty({ description: "task.*, batch.completed, flow.* or a notify step's event", example: 'task.completed' })
  event_type: string;
  @ApiProperty({ description: "The event's number within its task or run", example: 4 })
  sequence: number;
  @ApiProperty({ example: 'https://example.com/hooks/media' })
  url: string;
  @ApiProperty({
    enum: ['pending', 'delivered', 'failed', 'dead'],
    enumName: 'DeliveryStatus',
    description: 'failed: an attempt failed and a retry is due; dead: out of retries (or 410 Gone)',
    example: 'delivered',
  })
  status: string;
  @ApiProperty({ example: 1 })
  attempt_count: number;
  @ApiProperty({ type: [DeliveryAttemptDto] })
  attempts: DeliveryAttemptDto[];
  @ApiProperty({ type: String, nullable: true, format: 'date-time', example: null })
  next_attempt_at: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time', example: '2026-12-04T10:15:31.000Z' })
  delivered_at: string | null;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:15:30.123Z' })
  created_at: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: "The body sent (signed as is): a task event, batch.completed, a flow event or the sources' body",
    example: { event_type: 'task.completed', task_id: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21', sequence: 4 },
  })
  payload: unknown;
}

export class DeliveryListDto {
  @ApiProperty({ type: [DeliveryDto] })
  data: DeliveryDto[];
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last page',
    example: null,
  })
  next_cursor?: string | null;
}

export class DeliveryStatisticsDto implements DeliveryStatistics {
  @ApiProperty({ example: 2 })
  pending: number;
  @ApiProperty({ example: 120 })
  delivered: number;
  @ApiProperty({ description: 'Failed attempts waiting for their retry', example: 1 })
  failed: number;
  @ApiProperty({ description: 'Dead letters: out of retries (or 410 Gone); replayable', example: 3 })
  dead: number;
  @ApiProperty({ type: Number, nullable: true, description: 'delivered / (delivered + dead)', example: 0.976 })
  success_rate: number | null;
  @ApiProperty({ type: LatencyDto, description: 'From the event to its successful delivery, ms' })
  latency_ms: LatencyDto;
  @ApiProperty({ type: AttemptDurationDto, description: 'How long an attempt took, ms' })
  attempt_duration_ms: AttemptDurationDto;
  @ApiProperty({ enum: ['own', 'all'], enumName: 'ListScope', example: 'own' })
  scope: 'own' | 'all';
}

/** Dead letters are listed like tasks: `limit`, `cursor`, `scope`. */
export class DeadLetterQueryDto extends PageQueryDto {}

export function toDeliveryDto(row: DeliveryRow): DeliveryDto {
  return {
    id: row.id,
    task_id: row.taskId,
    flow_run_id: row.flowRunId,
    event_type: row.eventType,
    sequence: row.sequence,
    url: row.url,
    status: row.status,
    attempt_count: row.attempts,
    attempts: row.attemptLog,
    next_attempt_at: row.status === 'pending' || row.status === 'failed' ? iso(row.nextAttemptAt) : null,
    delivered_at: iso(row.deliveredAt),
    created_at: row.createdAt.toISOString(),
    payload: JSON.parse(row.body) as unknown,
  };
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
