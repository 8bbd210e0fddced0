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
 * Kept beside payloadOf, and checked against it by the webhook tests.
 */
export function payloadSql(row: string, event: string): string {
  return `CASE WHEN ${row}.options->>'webhook_format' = 'sources' THEN ${sourcesPayloadSql(row)} ELSE ${contractPayloadSql(row, event)} END`;
}

/**
 * The webhook body of the video API of the sources (CONTRACT.md), for tasks submitted through its routes:
 * `{jobId, status, result: {videos: [{id, video_url, filename}], message}, error, id_roteiro}`.
 */
function sourcesPayloadSql(row: string): string {
  return `jsonb_build_object(
      'jobId', ${row}.id,
      'status', CASE ${row}.status WHEN 'completed' THEN 'COMPLETED' WHEN 'failed' THEN 'FAILED'
                  WHEN 'cancelled' THEN 'CANCELLED' WHEN 'processing' THEN 'IN_PROGRESS' ELSE 'IN_QUEUE' END,
      'result', CASE WHEN ${row}.status = 'completed' THEN jsonb_build_object(
        'videos', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                     'id', coalesce(${row}.output->'clips'->((f.i - 1)::int)->>'id',
                                    regexp_replace(f.v->>'filename', '\\.[^.]+$', '')),
                     'video_url', f.v->>'url',
                     'filename', f.v->>'filename') ORDER BY f.i), '[]'::jsonb)
                     FROM jsonb_array_elements(coalesce(${row}.output->'files', '[]'::jsonb)) WITH ORDINALITY AS f(v, i)),
        'message', 'done') END,
      'error', ${row}.error->>'message',
      'id_roteiro', ${row}.metadata->'id_roteiro')::text`;
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
