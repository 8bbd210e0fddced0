/** Values stored in Postgres and sent to clients: never rename a member's value. */
export enum TaskType {
  ImageGeneration = 'image_generation',
  VideoGeneration = 'video_generation',
  AudioTranscription = 'audio_transcription',
  SubtitleGeneration = 'subtitle_generation',
  Img2Vid = 'img2vid',
  Caption = 'caption',
  AddAudio = 'addaudio',
  ImageEdit = 'image_edit',
}

export enum TaskStatus {
  Pending = 'pending',
  Queued = 'queued',
  Processing = 'processing',
  Completed = 'completed',
  Failed = 'failed',
  Cancelled = 'cancelled',
}

export enum TaskPriority {
  Low = 'low',
  Medium = 'medium',
  High = 'high',
  Urgent = 'urgent',
}

export enum RoutingStrategy {
  Quality = 'quality',
  Speed = 'speed',
  Cost = 'cost',
  Reliability = 'reliability',
  LoadBalancing = 'load_balancing',
}

export enum CacheMode {
  Use = 'use',
  Bypass = 'bypass',
}

export enum TaskEventType {
  Created = 'task.created',
  Started = 'task.started',
  Progress = 'task.progress',
  Completed = 'task.completed',
  Failed = 'task.failed',
  Cancelled = 'task.cancelled',
}

export const TERMINAL_STATUSES: readonly TaskStatus[] = [TaskStatus.Completed, TaskStatus.Failed, TaskStatus.Cancelled];

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** BullMQ priority: lower runs first. */
export const QUEUE_PRIORITY: Record<TaskPriority, number> = {
  [TaskPriority.Urgent]: 1,
  [TaskPriority.High]: 2,
  [TaskPriority.Medium]: 3,
  [TaskPriority.Low]: 4,
};

/** Stable error codes in `task.error.code`. */
export enum TaskErrorCode {
  NoProvider = 'no_provider',
  Timeout = 'timeout',
  InvalidInput = 'invalid_input',
  ProviderError = 'provider_error',
  InternalError = 'internal_error',
  Stalled = 'stalled',
}

/** Default time a task may run, in seconds, before it fails with `timeout` (TASK_TIMEOUTS overrides). */
export const DEFAULT_TASK_TIMEOUTS_S: Record<TaskType, number> = {
  [TaskType.ImageGeneration]: 300,
  [TaskType.VideoGeneration]: 1800,
  [TaskType.AudioTranscription]: 900,
  [TaskType.SubtitleGeneration]: 60,
  [TaskType.Img2Vid]: 3600,
  [TaskType.Caption]: 600,
  [TaskType.AddAudio]: 300,
  [TaskType.ImageEdit]: 300,
};

/** What an `image_edit` task does to its image (the image app's four queues). */
export const IMAGE_OPERATIONS = ['stencil', 'enhance', 'generate', 'color_match'] as const;
export type ImageOperation = (typeof IMAGE_OPERATIONS)[number];
