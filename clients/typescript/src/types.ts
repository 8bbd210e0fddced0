import type { paths } from './generated/openapi';

/*
 * Types read from the generated document by path and status (not by schema or operation name), so the hand-written
 * layer follows the API as it is served, whatever its schemas are called.
 */

type Operation<P extends keyof paths, M extends keyof paths[P]> = paths[P][M];

/** The JSON body of a response (`unknown` where the document gives no schema). */
export type ResponseBody<P extends keyof paths, M extends keyof paths[P], S extends number> =
  Operation<P, M> extends { responses: infer R }
    ? S extends keyof R
      ? R[S] extends { content: { 'application/json': infer T } }
        ? T
        : unknown
      : unknown
    : never;

/** The JSON request body of an operation. */
export type RequestBody<P extends keyof paths, M extends keyof paths[P]> =
  Operation<P, M> extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

/** The query parameters of an operation. */
export type QueryOf<P extends keyof paths, M extends keyof paths[P]> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type Task = ResponseBody<'/api/v1/media/tasks/{id}', 'get', 200>;
export type TaskPage = ResponseBody<'/api/v1/media/tasks', 'get', 200>;
export type TaskListQuery = QueryOf<'/api/v1/media/tasks', 'get'>;
export type TaskResult = ResponseBody<'/api/v1/media/tasks/{id}/result', 'get', 200>;
export type TaskType = Task['type'];
export type TaskStatus = Task['status'];
export type Statistics = ResponseBody<'/api/v1/media/statistics', 'get', 200>;
export type QueueStats = ResponseBody<'/api/v1/queue/stats', 'get', 200>;

/** The create route of each task type. */
export const CREATE_PATHS = {
  image_generation: '/api/v1/media/images/generate',
  image_edit: '/api/v1/media/images/edit',
  video_generation: '/api/v1/media/videos/generate',
  audio_transcription: '/api/v1/media/audio/transcribe',
  subtitle_generation: '/api/v1/media/subtitles/generate',
  img2vid: '/api/v1/media/videos/img2vid',
  caption: '/api/v1/media/videos/caption',
  addaudio: '/api/v1/media/videos/addaudio',
} as const satisfies Record<TaskType, keyof paths>;

/** Short names for the task types, as the command line takes them. */
export const TASK_TYPE_ALIASES = {
  image: 'image_generation',
  'image-edit': 'image_edit',
  video: 'video_generation',
  transcribe: 'audio_transcription',
  subtitles: 'subtitle_generation',
} as const satisfies Record<string, TaskType>;

/** A task type by its name (`image_generation`) or its short name (`image`). */
export type TaskKind = TaskType | keyof typeof TASK_TYPE_ALIASES;

type Canonical<K extends TaskKind> = K extends keyof typeof TASK_TYPE_ALIASES ? (typeof TASK_TYPE_ALIASES)[K] : K;

/** What a task type's create route takes. */
export type TaskInput<K extends TaskKind> = RequestBody<(typeof CREATE_PATHS)[Canonical<K>], 'post'>;

export function taskTypeOf(kind: string): TaskType | undefined {
  if (kind in CREATE_PATHS) return kind as TaskType;
  if (kind in TASK_TYPE_ALIASES) return TASK_TYPE_ALIASES[kind as keyof typeof TASK_TYPE_ALIASES];
  return undefined;
}

/** The lifecycle events of a task, as the live stream and webhooks carry them. */
export type TaskEventType =
  'task.created' | 'task.started' | 'task.progress' | 'task.completed' | 'task.failed' | 'task.cancelled';

export const TASK_EVENT_TYPES: readonly TaskEventType[] = [
  'task.created',
  'task.started',
  'task.progress',
  'task.completed',
  'task.failed',
  'task.cancelled',
];

export const TERMINAL_EVENT_TYPES: readonly TaskEventType[] = ['task.completed', 'task.failed', 'task.cancelled'];

/** One event of a task (the webhook body): `sequence` rises by one per event of the task. */
export interface TaskEvent {
  event_type: TaskEventType;
  task_id: string;
  timestamp: string;
  sequence: number;
  data: {
    status: TaskStatus;
    type: TaskType;
    /** 0 to 1. */
    progress: number;
    output_data: Record<string, unknown> | null;
    error: { code: string; message: string } | null;
  };
  user_id: string;
  metadata: Record<string, unknown> | null;
}

export function isTerminalEvent(event: TaskEvent): boolean {
  return TERMINAL_EVENT_TYPES.includes(event.event_type);
}
