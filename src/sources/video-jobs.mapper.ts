import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStatus } from '../tasks/task.enums';

/** The statuses of the async video API of the sources (RunPod's words), on `/video/job/{id}`. */
export type JobStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/** The statuses of the orchestrator of the sources, on `/jobs/{id}`. */
export type OrchestratorStatus = 'QUEUED' | 'SUBMITTED' | 'PROCESSING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

const JOB_STATUS: Record<TaskStatus, JobStatus> = {
  [TaskStatus.Pending]: 'IN_QUEUE',
  [TaskStatus.Queued]: 'IN_QUEUE',
  [TaskStatus.Processing]: 'IN_PROGRESS',
  [TaskStatus.Completed]: 'COMPLETED',
  [TaskStatus.Failed]: 'FAILED',
  [TaskStatus.Cancelled]: 'CANCELLED',
};

export interface VideoOutput {
  videos: { id: string; video_url: string; filename: string }[];
  message: string;
}

export interface JobView {
  id: string;
  status: JobStatus;
  delayTime: number;
  executionTime: number;
  output: VideoOutput | null;
  error: string | null;
  id_roteiro?: unknown;
}

/** A job as the orchestrator's `GET /jobs/{id}` shows it. */
export interface OrchestratorJobView {
  jobId: string;
  id: string;
  status: OrchestratorStatus;
  /** 0–100; 100 only once completed. */
  progress: number;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  delayTime: number;
  executionTime: number;
  result: VideoOutput | null;
  error: string | null;
  id_roteiro?: unknown;
}

/** The orchestrator's answer to a submit with a `webhook_url`: the job is queued, its webhook will say how it ended. */
export interface OrchestratorAccepted {
  jobId: string;
  status: 'QUEUED';
  estimatedTime: string;
  statusUrl: string;
  resultUrl: string;
  message: string;
}

/** The async video API's answer to `…/async` (and to a synchronous call still running when its wait ends). */
export interface JobAccepted {
  jobId: string;
  status: 'IN_QUEUE';
  statusUrl: string;
  resultUrl: string;
  estimatedTime: string;
  message: string;
}

export function jobStatus(status: string): JobStatus {
  return JOB_STATUS[status as TaskStatus] ?? 'IN_QUEUE';
}

export function jobPaths(id: string): { statusUrl: string; resultUrl: string } {
  return { statusUrl: `/video/job/${id}`, resultUrl: `/video/job/${id}/result` };
}

/** The message of a finished job's result, in the API's answers and in its webhook alike. */
export function videosReadyMessage(count: number): string {
  return `${count} video${count === 1 ? '' : 's'} ready`;
}

/** `output.videos` as the sources answered it: one entry per stored clip, with the clip's id. */
export function videoOutput(task: Pick<TaskResponseDto | TaskEntity, 'status' | 'output'>): VideoOutput | null {
  if (task.status !== TaskStatus.Completed || !task.output) return null;
  const files = (task.output.files ?? []) as { filename: string; url: string }[];
  const clips = (task.output.clips ?? []) as { id: string }[];
  const videos = files.map((file, i) => ({
    id: clips[i]?.id ?? file.filename.replace(/\.[^.]+$/, ''),
    video_url: file.url,
    filename: file.filename,
  }));
  return { videos, message: videosReadyMessage(videos.length) };
}

function times(task: TaskResponseDto, now: number): { delayTime: number; executionTime: number } {
  const created = Date.parse(task.created_at);
  const started = task.started_at ? Date.parse(task.started_at) : null;
  const ended = task.completed_at ? Date.parse(task.completed_at) : null;
  return {
    delayTime: Math.max(0, (started ?? ended ?? now) - created),
    executionTime: started ? Math.max(0, (ended ?? now) - started) : 0,
  };
}

/** A task as `GET /video/job/{id}` shows it; delayTime and executionTime in ms. */
export function toJobView(task: TaskResponseDto, now = Date.now()): JobView {
  const view: JobView = {
    id: task.id,
    status: jobStatus(task.status),
    ...times(task, now),
    output: videoOutput(task),
    error: task.error ? task.error.message : null,
  };
  const roteiro = task.metadata?.id_roteiro;
  if (roteiro !== undefined) view.id_roteiro = roteiro;
  return view;
}

/** A task and, when it was split, its parts: how far its work has come, 0..1. */
function doneShare(task: TaskResponseDto, parts: TaskResponseDto[]): number {
  if (task.status === TaskStatus.Completed) return 1;
  if (parts.length === 0) return task.progress;
  const share = parts.reduce((sum, p) => sum + (p.status === TaskStatus.Completed ? 1 : p.progress), 0) / parts.length;
  // The task's own progress (parts completed) never goes back; the parts' running shares add to it.
  return Math.max(task.progress, share);
}

/**
 * The orchestrator's status of a task, from its row and, for a split task, its parts' rows:
 * - QUEUED: waiting in the platform's queue (`pending`, `queued`; a retry waiting for its backoff too);
 * - SUBMITTED: a worker has taken it (`processing`) and handed it on, but no work has been seen running yet: it is in
 *   a provider's line (a capped provider's slot, or the provider's own queue, like a RunPod job IN_QUEUE), with no
 *   progress reported, and for a split task none of its parts has progress or has completed;
 * - PROCESSING: `processing` with work seen running: the provider reported progress (RunPod reports it once a job is
 *   IN_PROGRESS on a worker; Runway, ffmpeg and others as they go), or one of the parts did or has completed;
 * - COMPLETED, FAILED, CANCELLED: the task's end.
 * Progress only grows while a task runs, so the status only moves forward — unless a run fails transiently and is
 * retried, which puts the task back in the queue.
 */
export function orchestratorStatus(task: TaskResponseDto, parts: TaskResponseDto[] = []): OrchestratorStatus {
  switch (task.status) {
    case TaskStatus.Pending:
    case TaskStatus.Queued:
      return 'QUEUED';
    case TaskStatus.Processing:
      return doneShare(task, parts) > 0 ? 'PROCESSING' : 'SUBMITTED';
    case TaskStatus.Completed:
      return 'COMPLETED';
    case TaskStatus.Failed:
      return 'FAILED';
    case TaskStatus.Cancelled:
      return 'CANCELLED';
  }
}

/** A task as `GET /jobs/{id}` shows it (the orchestrator's words); `parts` are its parts when it was split. */
export function toOrchestratorView(
  task: TaskResponseDto,
  parts: TaskResponseDto[] = [],
  now = Date.now(),
): OrchestratorJobView {
  const share = doneShare(task, parts);
  const view: OrchestratorJobView = {
    jobId: task.id,
    id: task.id,
    status: orchestratorStatus(task, parts),
    // 100 means done: a running job shows at most 99.
    progress: task.status === TaskStatus.Completed ? 100 : Math.min(99, Math.floor(share * 100)),
    createdAt: task.created_at,
    startedAt: task.started_at,
    completedAt: task.completed_at,
    ...times(task, now),
    result: videoOutput(task),
    error: task.error ? task.error.message : null,
  };
  const roteiro = task.metadata?.id_roteiro;
  if (roteiro !== undefined) view.id_roteiro = roteiro;
  return view;
}

/** A rough duration for the submit answers: two seconds of work per image, at least a minute. */
function estimatedTime(task: TaskResponseDto): string {
  const images = Array.isArray(task.input.images) ? task.input.images.length : 0;
  const minutes = Math.max(1, Math.ceil((images * 2) / 60));
  return `~${minutes} minute${minutes === 1 ? '' : 's'}`;
}

export function jobAccepted(task: TaskResponseDto): JobAccepted {
  return {
    jobId: task.id,
    status: 'IN_QUEUE',
    ...jobPaths(task.id),
    estimatedTime: estimatedTime(task),
    message: 'Job queued',
  };
}

export function orchestratorAccepted(task: TaskResponseDto): OrchestratorAccepted {
  return {
    jobId: task.id,
    status: 'QUEUED',
    estimatedTime: estimatedTime(task),
    statusUrl: `/jobs/${task.id}`,
    resultUrl: `/video/job/${task.id}/result`,
    message: 'Job queued: the webhook_url is called when it ends',
  };
}

/** The webhook body of the sources' jobs: what `GET /video/job/{id}` says of the job, without its timings. */
export interface SourcesWebhookPayload {
  jobId: string;
  status: JobStatus;
  result: VideoOutput | null;
  error: string | null;
  id_roteiro: unknown;
}

/** The sources' webhook body of a task's row (see webhookBody), in the words toJobView uses. */
export function sourcesWebhookPayload(task: TaskEntity): SourcesWebhookPayload {
  return {
    jobId: task.id,
    status: jobStatus(task.status),
    result: videoOutput(task),
    error: task.error ? task.error.message : null,
    id_roteiro: task.metadata?.id_roteiro ?? null,
  };
}
