import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import { TaskStatus } from '../tasks/task.enums';

/** The statuses of the video API of the sources (RunPod's words). */
export type JobStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

const JOB_STATUS: Record<string, JobStatus> = {
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

export function jobStatus(status: string): JobStatus {
  return JOB_STATUS[status] ?? 'IN_QUEUE';
}

export function jobPaths(id: string): { statusUrl: string; resultUrl: string } {
  return { statusUrl: `/video/job/${id}`, resultUrl: `/video/job/${id}/result` };
}

/** `output.videos` as the sources answered it: one entry per stored clip, with the clip's id. */
export function videoOutput(task: TaskResponseDto): VideoOutput | null {
  if (task.status !== TaskStatus.Completed || !task.output) return null;
  const files = (task.output.files ?? []) as { filename: string; url: string }[];
  const clips = (task.output.clips ?? []) as { id: string }[];
  const videos = files.map((file, i) => ({
    id: clips[i]?.id ?? file.filename.replace(/\.[^.]+$/, ''),
    video_url: file.url,
    filename: file.filename,
  }));
  return { videos, message: `${videos.length} video${videos.length === 1 ? '' : 's'} ready` };
}

/** A task as `GET /jobs/{id}` and `GET /video/job/{id}` show it; delayTime and executionTime in ms. */
export function toJobView(task: TaskResponseDto, now = Date.now()): JobView {
  const created = Date.parse(task.created_at);
  const started = task.started_at ? Date.parse(task.started_at) : null;
  const ended = task.completed_at ? Date.parse(task.completed_at) : null;
  const view: JobView = {
    id: task.id,
    status: jobStatus(task.status),
    delayTime: Math.max(0, (started ?? ended ?? now) - created),
    executionTime: started ? Math.max(0, (ended ?? now) - started) : 0,
    output: videoOutput(task),
    error: task.error ? task.error.message : null,
  };
  const roteiro = task.metadata?.id_roteiro;
  if (roteiro !== undefined) view.id_roteiro = roteiro;
  return view;
}
