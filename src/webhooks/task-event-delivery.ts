import { randomUUID } from 'node:crypto';
import { webhookBody } from '../events/event-payload';
import type { TaskEntity } from '../tasks/entities/task.entity';
import type { TaskEventType } from '../tasks/task.enums';
import { WebhookDeliveryEntity } from './entities/webhook-delivery.entity';

/**
 * The webhook delivery a task's event makes, `task` being the row as the event's write left it (its `event_seq` is
 * the event's sequence); null when the task has no URL or its filter leaves the event out. Written by the same
 * transaction as that write (see TasksRepository).
 */
export function deliveryOfTaskEvent(type: TaskEventType, task: TaskEntity): WebhookDeliveryEntity | null {
  if (!task.webhookUrl) return null;
  if (task.webhookEvents && !task.webhookEvents.includes(type)) return null;
  return WebhookDeliveryEntity.create({
    id: randomUUID(),
    taskId: task.id,
    userId: task.userId,
    eventType: type,
    sequence: task.eventSeq,
    url: task.webhookUrl,
    body: webhookBody(type, task),
    nextAttemptAt: task.updatedAt,
    createdAt: task.updatedAt,
  });
}
