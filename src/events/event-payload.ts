import { sourcesPayloadSql } from '../sources/video-jobs.mapper';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskEventType } from '../tasks/task.enums';
import type { TaskEvent } from './task-event';

/** The body of an event as webhooks and the live stream carry it (CONTRACT.md, Webhooks). */
export interface TaskEventPayload {
  event_type: TaskEventType;
  task_id: string;
  timestamp: string;
  sequence: number;
  data: {
    status: string;
    type: string;
    progress: number;
    output_data: Record<string, unknown> | null;
    error: { code: string; message: string } | null;
  };
  user_id: string;
  metadata: Record<string, unknown> | null;
}

export function toEventPayload(event: TaskEvent): TaskEventPayload {
  return payloadOf(event.type, event.task, event.sequence, event.timestamp);
}

/** The payload of the event a task's row stands for, `sequence` being the row's `event_seq`. */
export function payloadOf(type: TaskEventType, task: TaskEntity, sequence: number, at: Date): TaskEventPayload {
  return {
    event_type: type,
    task_id: task.id,
    timestamp: at.toISOString(),
    sequence,
    data: {
      status: task.status,
      type: task.type,
      progress: task.progress,
      output_data: task.output ?? null,
      error: task.error ? { code: task.error.code, message: task.error.message } : null,
    },
    user_id: task.userId,
    metadata: task.metadata ?? null,
  };
}

/**
 * The same payload built by Postgres from a task row (alias `row`, the row as a transition left it), so that the
 * delivery row can be written by the transition's own statement. `$event` is the SQL of the event type.
 * Kept beside payloadOf, and checked against it by the webhook tests. Tasks submitted through the sources' video
 * routes get the sources' body instead (sourcesPayloadSql, beside the mapper of their API's answers).
 */
export function payloadSql(row: string, event: string): string {
  return `CASE WHEN ${row}.options->>'webhook_format' = 'sources' THEN ${sourcesPayloadSql(row)} ELSE ${contractPayloadSql(row, event)} END`;
}

function contractPayloadSql(row: string, event: string): string {
  return `jsonb_build_object(
      'event_type', ${event}::text,
      'task_id', ${row}.id,
      'timestamp', to_char(${row}.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'sequence', ${row}.event_seq,
      'data', jsonb_build_object(
        'status', ${row}.status,
        'type', ${row}.type,
        'progress', ${row}.progress,
        'output_data', ${row}.output,
        'error', CASE WHEN ${row}.error IS NULL THEN NULL
                      ELSE jsonb_build_object('code', ${row}.error->'code', 'message', ${row}.error->'message') END),
      'user_id', ${row}.user_id,
      'metadata', ${row}.metadata)::text`;
}
