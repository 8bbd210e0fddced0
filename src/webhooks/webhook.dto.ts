import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { PageQueryDto } from '../common/page-query.dto';
import type { DeliveryRow, DeliveryStatistics } from './webhook-deliveries.repository';

export class DeliveryAttemptDto {
  @ApiProperty({ format: 'date-time' })
  at: string;
  @ApiProperty({ nullable: true, description: "The receiver's HTTP status; null when none came (timeout, refused)" })
  status_code: number | null;
  @ApiProperty()
  duration_ms: number;
  @ApiProperty({ nullable: true })
  error: string | null;
  @ApiProperty({ nullable: true, description: 'The first 512 characters of the answer' })
  response_excerpt: string | null;
}

export class DeliveryDto {
  @ApiProperty({ description: 'Also the webhook-id header: the same on every attempt and replay' })
  id: string;
  @ApiProperty({ nullable: true })
  task_id: string | null;
  @ApiProperty({ nullable: true, description: 'The flow run whose event or notify step made it' })
  flow_run_id: string | null;
  @ApiProperty({ example: 'task.completed' })
  event_type: string;
  @ApiProperty()
  sequence: number;
  @ApiProperty()
  url: string;
  @ApiProperty({ enum: ['pending', 'delivered', 'failed', 'dead'] })
  status: string;
  @ApiProperty()
  attempt_count: number;
  @ApiProperty({ type: [DeliveryAttemptDto] })
  attempts: DeliveryAttemptDto[];
  @ApiProperty({ nullable: true, format: 'date-time' })
  next_attempt_at: string | null;
  @ApiProperty({ nullable: true, format: 'date-time' })
  delivered_at: string | null;
  @ApiProperty({ format: 'date-time' })
  created_at: string;
  @ApiProperty({ description: 'The body sent (signed as is)' })
  payload: unknown;
}

export class DeliveryListDto {
  @ApiProperty({ type: [DeliveryDto] })
  data: DeliveryDto[];
  @ApiPropertyOptional({ nullable: true })
  next_cursor?: string | null;
}

export class DeliveryStatisticsDto implements DeliveryStatistics {
  @ApiProperty()
  pending: number;
  @ApiProperty()
  delivered: number;
  @ApiProperty({ description: 'Failed attempts waiting for their retry' })
  failed: number;
  @ApiProperty({ description: 'Dead letters: out of retries (or 410 Gone); replayable' })
  dead: number;
  @ApiProperty({ nullable: true, description: 'delivered / (delivered + dead)' })
  success_rate: number | null;
  @ApiProperty({ description: 'From the event to its successful delivery, ms' })
  latency_ms: { mean: number | null; p50: number | null; p95: number | null; p99: number | null };
  @ApiProperty()
  attempt_duration_ms: { mean: number | null };
  @ApiProperty({ enum: ['own', 'all'] })
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
