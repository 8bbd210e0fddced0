import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { BatchCountsDto } from '../batches/dto/batch-response.dto';
import { FLOW_EVENT_TYPES } from '../flows/flow-events';
import { TaskErrorDto } from '../tasks/dto/task-response.dto';
import { TaskEventType, TaskStatus, TaskType } from '../tasks/task.enums';

/*
 * The bodies this platform sends (webhooks) and streams (Server-Sent Events), for the document only: the code that
 * builds them is src/events/event-payload.ts (task events), BatchesRepository.closeIfFinished (batch.completed),
 * src/sources/video-jobs.mapper.ts (the sources' body) and src/flows/outbound/flow-webhooks.ts (flow events).
 */

const TASK_ID = '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21';

/** A task.completed event, as the document's examples show it (webhook body and SSE `data:` alike). */
export const TASK_EVENT_EXAMPLE = {
  event_type: 'task.completed',
  task_id: TASK_ID,
  timestamp: '2026-12-04T10:15:30.123Z',
  sequence: 4,
  data: {
    status: 'completed',
    type: 'subtitle_generation',
    progress: 1,
    output_data: { url: '/files/9b1c6f1e/subtitles.srt', format: 'srt' },
    error: null,
  },
  user_id: 'alice',
  metadata: { order: 'A-17' },
};

/** Any JSON value, null included (a schema with no type would be given `object` from the TypeScript type). */
const ANY_JSON = [
  { type: 'string' },
  { type: 'number' },
  { type: 'boolean' },
  { type: 'object', additionalProperties: true },
  { type: 'array', items: {} },
  { type: 'null' },
];
const USER = 'alice';

export class TaskEventDataDto {
  @ApiProperty({ enum: TaskStatus, enumName: 'TaskStatus', example: TaskStatus.Completed })
  status: TaskStatus;
  @ApiProperty({ enum: TaskType, enumName: 'TaskType', example: TaskType.SubtitleGeneration })
  type: TaskType;
  @ApiProperty({ minimum: 0, maximum: 1, example: 1 })
  progress: number;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: "The task's output (on task.completed); null before",
    example: { url: '/files/9b1c6f1e/subtitles.srt', format: 'srt' },
  })
  output_data: Record<string, unknown> | null;
  @ApiProperty({ type: TaskErrorDto, nullable: true, description: 'Why it failed (task.failed); null otherwise' })
  error: TaskErrorDto | null;
}

/** A task's event: the body of its webhook (unless submitted through the sources' routes) and of its SSE `data:`. */
export class TaskEventPayloadDto {
  @ApiProperty({ enum: TaskEventType, enumName: 'TaskEventType', example: TaskEventType.Completed })
  event_type: TaskEventType;
  @ApiProperty({ format: 'uuid', example: TASK_ID })
  task_id: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:15:30.123Z' })
  timestamp: string;
  @ApiProperty({
    description: "The event's number within its task, from 1, in order (also the SSE `id:`); deduplicate on it",
    example: 4,
  })
  sequence: number;
  @ApiProperty({ type: TaskEventDataDto })
  data: TaskEventDataDto;
  @ApiProperty({ example: USER })
  user_id: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'The metadata the task was submitted with',
    example: { order: 'A-17' },
  })
  metadata: Record<string, unknown> | null;
}

export class BatchCompletedDataDto {
  @ApiProperty({ example: 10 })
  total: number;
  @ApiProperty({ type: BatchCountsDto })
  counts: BatchCountsDto;
}

/** Sent once, when the last task of a batch with a `webhook_url` has finished. */
export class BatchCompletedPayloadDto {
  @ApiProperty({ enum: ['batch.completed'], enumName: 'BatchEventType', example: 'batch.completed' })
  event_type: 'batch.completed';
  @ApiProperty({ format: 'uuid', example: '0f8e2d4c-5b6a-4e3f-9c1d-2a7b8c9d0e1f' })
  batch_id: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:20:00.000Z' })
  timestamp: string;
  @ApiProperty({ type: BatchCompletedDataDto })
  data: BatchCompletedDataDto;
  @ApiProperty({ example: USER })
  user_id: string;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, example: { campaign: 'winter' } })
  metadata: Record<string, unknown> | null;
}

export class SourcesVideoDto {
  @ApiProperty({ example: 'a' })
  id: string;
  @ApiProperty({ example: '/files/9b1c6f1e/a.mp4' })
  video_url: string;
  @ApiProperty({ example: 'a.mp4' })
  filename: string;
}

export class SourcesVideoOutputDto {
  @ApiProperty({ type: [SourcesVideoDto] })
  videos: SourcesVideoDto[];
  @ApiProperty({ example: '1 video generated' })
  message: string;
}

/** The body of the webhook of a job submitted through the sources' video routes (`webhook_format: sources`). */
export class SourcesJobPayloadDto {
  @ApiProperty({ format: 'uuid', example: TASK_ID })
  jobId: string;
  @ApiProperty({
    enum: ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'],
    enumName: 'SourcesJobStatus',
    example: 'COMPLETED',
  })
  status: string;
  @ApiProperty({ type: SourcesVideoOutputDto, nullable: true, description: 'The videos, once COMPLETED' })
  result: SourcesVideoOutputDto | null;
  @ApiProperty({ nullable: true, type: String, description: 'Why it failed', example: null })
  error: string | null;
  @ApiProperty({
    oneOf: ANY_JSON,
    description: 'The id_roteiro the job was submitted with, as given (any JSON value; null when none)',
    example: 'roteiro-42',
  })
  id_roteiro: unknown;
}

export class FlowEventStepDto {
  @ApiProperty({ example: 'render' })
  id: string;
  @ApiProperty({ example: 'task', description: 'The step kind (task, condition, delay, notify, …)' })
  kind: string;
  @ApiProperty({ example: 'completed' })
  status: string;
  @ApiProperty({ oneOf: ANY_JSON, description: "The step's output (any JSON value)", example: { task_id: TASK_ID } })
  output: unknown;
}

export class FlowEventDataDto {
  @ApiProperty({ format: 'uuid', example: '5d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f' })
  run_id: string;
  @ApiProperty({ format: 'uuid', example: '7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d' })
  flow_id: string;
  @ApiProperty({ description: 'The flow version the run runs', example: 2 })
  version: number;
  @ApiProperty({ example: 'running' })
  status: string;
  @ApiPropertyOptional({ type: FlowEventStepDto, description: 'On flow.step.completed: the step' })
  step?: FlowEventStepDto;
  @ApiPropertyOptional({ type: TaskErrorDto, description: 'On flow.failed: why' })
  error?: TaskErrorDto;
}

/** A flow run's event, sent to the flow's `webhook_url` (filtered by its `webhook_events`). */
export class FlowEventPayloadDto {
  @ApiProperty({ enum: FLOW_EVENT_TYPES, enumName: 'FlowEventType', example: 'flow.step.completed' })
  type: string;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:15:30.123Z' })
  timestamp: string;
  @ApiProperty({ type: FlowEventDataDto })
  data: FlowEventDataDto;
}

/**
 * One Server-Sent Event of a task's stream, field by field (the convention of SSE-aware generators: the schema of a
 * text/event-stream answer describes one event). On the wire: `id: 4\nevent: task.completed\ndata: {…}\n\n`.
 */
export class TaskEventStreamEventDto {
  @ApiProperty({ description: 'The event sequence (send it back as Last-Event-ID when reconnecting)', example: '4' })
  id: string;
  @ApiProperty({ enum: TaskEventType, enumName: 'TaskEventType', example: TaskEventType.Completed })
  event: TaskEventType;
  @ApiProperty({ type: TaskEventPayloadDto, description: 'JSON: the same body as the webhook of the event' })
  data: TaskEventPayloadDto;
  @ApiPropertyOptional({ description: 'Sent once, first: the reconnection delay, ms', example: 3000 })
  retry?: number;
}

/** One Server-Sent Event of the feed of many tasks (GET /api/v1/media/events): no `id`, sequences are per task. */
export class TaskEventFeedEventDto extends OmitType(TaskEventStreamEventDto, ['id'] as const) {}

/** Every class above, for `extraModels`. */
export const WEBHOOK_PAYLOAD_MODELS = [
  TaskEventPayloadDto,
  TaskEventStreamEventDto,
  TaskEventFeedEventDto,
  BatchCompletedPayloadDto,
  SourcesJobPayloadDto,
  FlowEventPayloadDto,
];
