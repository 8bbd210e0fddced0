import { DomainException, ErrorCode, ValidationException } from '../common/domain-exception';
import { TaskResponseDto } from './dto/task-response.dto';
import { TaskEntity } from './entities/task.entity';
import { TaskStatus } from './task.enums';

export const TASKS_PATH = '/api/v1/media/tasks';

/** The public shape of a task; the webhook secret never leaves. */
export function toTaskResponse(task: TaskEntity, extras: { queuePosition?: number; now?: Date } = {}): TaskResponseDto {
  const now = (extras.now ?? new Date()).getTime();
  const created = task.createdAt.getTime();
  const started = task.startedAt?.getTime();
  const finished = task.completedAt?.getTime();
  const running = task.status === TaskStatus.Processing;
  const response: TaskResponseDto = {
    id: task.id,
    type: task.type,
    status: task.status,
    priority: task.priority,
    progress: task.progress,
    input: task.input,
    output: task.output,
    error: task.error ? { code: task.error.code, message: task.error.message } : null,
    provider: task.provider,
    attempts: task.attempts,
    cost: task.costAmount == null ? null : { amount: task.costAmount, currency: task.costCurrency ?? 'USD' },
    cached: task.cached,
    webhook_url: task.webhookUrl,
    webhook_events: task.webhookEvents,
    metadata: task.metadata,
    created_at: task.createdAt.toISOString(),
    started_at: task.startedAt?.toISOString() ?? null,
    completed_at: task.completedAt?.toISOString() ?? null,
    run_at: task.runAt?.toISOString() ?? null,
    delay_time_ms:
      started !== undefined ? Math.max(0, started - created) : task.status === TaskStatus.Queued ? now - created : null,
    execution_time_ms:
      started === undefined
        ? null
        : running
          ? Math.max(0, now - started)
          : finished !== undefined
            ? Math.max(0, finished - started)
            : null,
    status_url: `${TASKS_PATH}/${task.id}`,
    result_url: `${TASKS_PATH}/${task.id}/result`,
  };
  if (extras.queuePosition !== undefined) response.queue_position = extras.queuePosition;
  else if (running && typeof task.providerJob?.queue_position === 'number') {
    // Handed to a provider that queues jobs (fal): its place in that queue, as the provider last said.
    response.queue_position = task.providerJob.queue_position;
  }
  if (task.parts) response.parts = task.parts;
  if (task.parentId) {
    response.parent_id = task.parentId;
    response.part_index = task.partIndex ?? 0;
  }
  return response;
}

/** Opaque keyset cursor over (created_at, id). */
export function encodeCursor(task: Pick<TaskEntity, 'createdAt' | 'id'>): string {
  return Buffer.from(`${task.createdAt.toISOString()}|${task.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | null {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso);
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) return null;
  return { createdAt, id };
}

/** Whether a request with this `scope` covers every user's resources: `all`, from an admin; 403 from anyone else. */
export function coversAllUsers(user: { isAdmin: boolean }, scope: string | undefined): boolean {
  if (scope === 'all' && !user.isAdmin) throw new DomainException(ErrorCode.Forbidden, 'scope=all is for admins');
  return scope === 'all';
}

/**
 * Where a page of a user's list starts and whose rows it holds: `scope=all` (admins only, else 403) lists every
 * user's; a cursor that is not one of this list is a 400 naming `cursor`.
 */
export function pageOf(
  user: { id: string; isAdmin: boolean },
  query: { scope?: string; cursor?: string; limit?: number },
): { userId: string | undefined; after: { createdAt: Date; id: string } | undefined; limit: number } {
  const all = coversAllUsers(user, query.scope);
  let after: { createdAt: Date; id: string } | undefined;
  if (query.cursor) {
    const decoded = decodeCursor(query.cursor);
    if (!decoded) throw new ValidationException([{ field: 'cursor', message: 'cursor is not a cursor of this list' }]);
    after = decoded;
  }
  return { userId: all ? undefined : user.id, after, limit: query.limit ?? 20 };
}
