export { MediaTasks, Tasks } from './client';
export type { CreateOptions, MediaTasksOptions, TaskEventsToken, WaitOptions, WatchOptions } from './client';
export * from './errors';
export type { RetryInfo, RetryOptions } from './http';
export {
  CREATE_PATHS,
  isTerminalEvent,
  TASK_EVENT_TYPES,
  TASK_TYPE_ALIASES,
  taskTypeOf,
  TERMINAL_EVENT_TYPES,
} from './types';
export type {
  QueueStats,
  RequestBody,
  ResponseBody,
  Statistics,
  Task,
  TaskEvent,
  TaskEventType,
  TaskInput,
  TaskKind,
  TaskListQuery,
  TaskPage,
  TaskResult,
  TaskStatus,
  TaskType,
} from './types';
export { verifyWebhook } from './webhooks';
export type { BatchCompletedEvent, VerifyOptions, WebhookEvent, WebhookHeaders } from './webhooks';
export type { paths } from './generated/openapi';
