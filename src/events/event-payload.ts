import { sourcesWebhookPayload } from '../sources/video-jobs.mapper';
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
 * The body of the webhook a task's event sends, `task` being the row as the event's transition left it. The one place
 * both families of bodies are built: tasks submitted through the sources' video routes get the sources' body
 * (`webhook_format: 'sources'`), every other task the contract's event payload.
 */
export function webhookBody(type: TaskEventType, task: TaskEntity): string {
  const payload =
    task.options.webhook_format === 'sources'
      ? sourcesWebhookPayload(task)
      : payloadOf(type, task, task.eventSeq, task.updatedAt);
  return JSON.stringify(payload);
}
