import { TaskType } from '../../../tasks/task.enums';

/**
 * The slice of the RunPod Serverless job API (`https://api.runpod.ai/v2/{endpoint_id}`) the adapter and its emulator
 * speak (PROVIDERS.md §5). The worker behind the endpoint is ours: it takes `input.operation` and the task's input.
 */

export type RunpodOperation = TaskType.Img2Vid | TaskType.Caption | TaskType.AddAudio;

/** policy.executionTimeout per operation, ms: the same budget as the task's own default timeout. */
export const RUNPOD_EXECUTION_TIMEOUT_MS: Record<RunpodOperation, number> = {
  [TaskType.Img2Vid]: 3_600_000,
  [TaskType.Caption]: 600_000,
  [TaskType.AddAudio]: 300_000,
};

/** RunPod accepts 5 s to 7 days. */
export const RUNPOD_MIN_EXECUTION_TIMEOUT_MS = 5_000;
export const RUNPOD_MAX_EXECUTION_TIMEOUT_MS = 7 * 24 * 3_600_000;
export const RUNPOD_DEFAULT_EXECUTION_TIMEOUT_MS = 600_000;

/** Default price of a GPU second (USD) on the endpoint's worker type. */
export const RUNPOD_USD_PER_GPU_SECOND = 0.00031;

/** Estimated GPU seconds: 2 per second of img2vid clip, a flat 30 for caption/addaudio. */
export const RUNPOD_GPU_S_PER_CLIP_S = 2;
export const RUNPOD_GPU_S_FLAT = 30;

/** Poll interval: 2 s for a fresh job, growing with its age to 5 s. */
export const RUNPOD_POLL_MIN_MS = 2_000;
export const RUNPOD_POLL_MAX_MS = 5_000;

export interface RunpodRunRequest {
  input: { operation: string; [key: string]: unknown };
  policy?: { executionTimeout?: number; ttl?: number; lowPriority?: boolean };
  webhook?: string;
}

export type RunpodJobStatus =
  'IN_QUEUE' | 'IN_PROGRESS' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';

export interface RunpodRunResponse {
  id: string;
  status: RunpodJobStatus;
}

/** GET /status/{id}. */
export interface RunpodStatusResponse {
  id: string;
  status: RunpodJobStatus;
  /** ms the job waited in the queue. */
  delayTime?: number;
  /** ms a worker spent on it (what is billed). */
  executionTime?: number;
  output?: unknown;
  error?: unknown;
  retries?: number;
}

/** One clip in our worker's output. */
export interface RunpodVideo {
  id: string;
  video_url: string;
  filename: string;
}

/** What our worker returns for img2vid (one clip per image) and caption/addaudio (one clip, id "output"). */
export interface RunpodWorkerOutput {
  videos: RunpodVideo[];
  message?: string;
}

export interface RunpodHealth {
  jobs: { completed: number; failed: number; inProgress: number; inQueue: number; retried: number };
  workers: { idle: number; running: number; [key: string]: number };
}

/** What `start` stores on the task: the job id, and when it was submitted (for the poll backoff). */
export interface RunpodJob {
  id: string;
  /** Epoch ms. */
  submittedAt?: number;
  [key: string]: unknown;
}
