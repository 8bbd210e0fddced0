import type { ImageEditDto } from '../tasks/dto/image-edit.dto';
import { TaskResponseDto } from '../tasks/dto/task-response.dto';
import { ImageOperation, TaskStatus } from '../tasks/task.enums';

/** The image app's queues, one per operation, by the names its front end uses. */
export const IMAGE_APP_QUEUES = {
  stencil: 'stencil',
  enhance: 'enhance',
  'ia-gen': 'generate',
  'color-match': 'color_match',
} as const satisfies Record<string, ImageOperation>;

export type ImageAppQueue = keyof typeof IMAGE_APP_QUEUES;

export function queueOf(operation: string): ImageAppQueue | undefined {
  return (Object.keys(IMAGE_APP_QUEUES) as ImageAppQueue[]).find((q) => IMAGE_APP_QUEUES[q] === operation);
}

/** BullMQ's words for a job's state, as the image app's front end reads them. */
export type ImageJobStatus = 'waiting' | 'active' | 'completed' | 'failed';

const STATUS: Record<TaskStatus, ImageJobStatus> = {
  [TaskStatus.Pending]: 'waiting',
  [TaskStatus.Queued]: 'waiting',
  [TaskStatus.Processing]: 'active',
  [TaskStatus.Completed]: 'completed',
  [TaskStatus.Failed]: 'failed',
  [TaskStatus.Cancelled]: 'failed',
};

export function imageJobStatus(status: TaskStatus): ImageJobStatus {
  return STATUS[status];
}

export interface ImageJobView {
  jobId: string;
  status: ImageJobStatus;
  /** 0–100. */
  progress: number;
  result: { image: string } | null;
  error: string | null;
}

/** The fields the platform shares with the image app, taken as they are. */
export const IMAGE_APP_KNOBS = [
  'style',
  'thickness',
  'threshold',
  'detail',
  'background',
  'scale',
  'strength',
  'palette',
  'output_format',
] as const satisfies readonly (keyof ImageEditDto)[];

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/**
 * An image app body as an image_edit input: `image` → `image_url`, `referenceImage` → `reference_url`,
 * `images`/`referenceImages` → `reference_urls`, `prompt` or `promptDetails` (text) → `prompt`; the knobs the
 * platform shares with the app (style, thickness, threshold, detail, background, scale, strength, output_format,
 * palette) as they are. Anything else is left out: the app's bodies carry fields of its own.
 */
export function imageEditInput(queue: ImageAppQueue, body: Record<string, unknown>): Record<string, unknown> {
  const operation = IMAGE_APP_QUEUES[queue];
  const input: Record<string, unknown> = { operation };
  const prompt = text(body.prompt) ?? text(body.promptDetails);
  if (prompt !== undefined) input.prompt = prompt;
  if (operation === 'generate') {
    const references = body.images ?? body.referenceImages;
    if (references !== undefined) input.reference_urls = references;
  } else {
    input.image_url = body.image;
    if (operation === 'color_match' && body.referenceImage !== undefined) input.reference_url = body.referenceImage;
  }
  for (const knob of IMAGE_APP_KNOBS) {
    if (body[knob] !== undefined) input[knob] = body[knob];
  }
  return input;
}

/** A task as the image app's `GET /api/queue/status/{jobId}` shows it; `image` is the output file's URL. */
export function toImageJobView(task: TaskResponseDto): ImageJobView {
  const status = imageJobStatus(task.status);
  const files = (task.output?.files as { url: string }[] | undefined) ?? [];
  return {
    jobId: task.id,
    status,
    progress: status === 'completed' ? 100 : Math.round((task.progress ?? 0) * 100),
    result: status === 'completed' && files[0] ? { image: files[0].url } : null,
    error: status === 'failed' ? (task.error?.message ?? 'cancelled') : null,
  };
}
