/**
 * fal's queue protocol (queue.fal.run) and the model inputs and outputs the adapter and its emulator speak. Shapes
 * follow fal-ai/fal-js (`libs/client/src/queue.ts`, `types/common.ts`, `response.ts`) and docs.fal.ai (queue,
 * model errors, request errors, the Pika v2.2 and FLUX.1 model pages); see docs/providers.md.
 */

/** Answer of `POST {base}/{model_id}`: the request is queued. Use its URLs afterwards (they drop the endpoint path). */
export interface FalQueueSubmitted {
  request_id: string;
  status: 'IN_QUEUE';
  /** Requests ahead of this one (0: next). */
  queue_position?: number;
  response_url: string;
  status_url: string;
  cancel_url: string;
}

export interface FalRequestLog {
  message: string;
  level: string;
  source?: string;
  timestamp: string;
}

interface FalStatusBase {
  request_id?: string;
  response_url?: string;
  status_url?: string;
  cancel_url?: string;
}

/** `GET …/requests/{id}/status`: 202 while queued or running, 200 once completed. */
export type FalQueueStatus =
  | (FalStatusBase & { status: 'IN_QUEUE'; queue_position: number })
  | (FalStatusBase & { status: 'IN_PROGRESS'; logs: FalRequestLog[] | null })
  | (FalStatusBase & {
      status: 'COMPLETED';
      logs: FalRequestLog[] | null;
      metrics?: { inference_time: number | null };
    });

/** A file a model made, served from fal's CDN. */
export interface FalFile {
  url: string;
  content_type?: string | null;
  file_name?: string | null;
  file_size?: number | null;
}

export interface FalImage extends FalFile {
  width?: number;
  height?: number;
}

/** Result of the video models (Pika and the others): `GET …/requests/{id}`. */
export interface FalVideoResult {
  video: FalFile;
  seed?: number;
}

/** Result of the image models (FLUX.1 and the others). */
export interface FalImageResult {
  images: FalImage[];
  seed?: number;
  prompt?: string;
  has_nsfw_concepts?: boolean[];
  timings?: Record<string, number>;
}

/** One entry of a model error's `detail` list (FastAPI/Pydantic style). */
export interface FalErrorDetail {
  loc: (string | number)[];
  msg: string;
  type: string;
  url?: string;
  ctx?: Record<string, unknown>;
  input?: unknown;
}

/**
 * Error bodies: model errors carry a `detail` list; request errors (timeouts, runner failures) a `detail` string
 * and an `error_type`, also sent as the `X-Fal-Error-Type` header.
 */
export interface FalErrorBody {
  detail?: string | FalErrorDetail[];
  error_type?: string;
}

/** Answer of `PUT …/requests/{id}/cancel`: 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED, 404 NOT_FOUND. */
export interface FalCancelAnswer {
  status: 'CANCELLATION_REQUESTED' | 'ALREADY_COMPLETED' | 'NOT_FOUND';
}

/** Pika v2.2 inputs (text-to-video; image-to-video adds `image_url`). */
export interface FalVideoInput {
  prompt: string;
  image_url?: string;
  negative_prompt?: string;
  seed?: number;
  resolution?: FalVideoResolution;
  duration?: FalVideoDuration;
}

/** FLUX.1 inputs. */
export interface FalImageInput {
  prompt: string;
  image_size?: { width: number; height: number } | string;
  num_images?: number;
  seed?: number;
  enable_safety_checker?: boolean;
  output_format?: 'jpeg' | 'png';
}

export const FAL_VIDEO_RESOLUTIONS = ['720p', '1080p'] as const;
export type FalVideoResolution = (typeof FAL_VIDEO_RESOLUTIONS)[number];
export const FAL_VIDEO_DURATIONS = [5, 10] as const;
export type FalVideoDuration = (typeof FAL_VIDEO_DURATIONS)[number];

/** fal-js polls every 500 ms; a video takes minutes, so every 2 s is plenty and keeps the calls few. */
export const FAL_POLL_MS = 2000;

/** A video model that starts from an image: fal names these endpoints `…/image-to-video`. */
export function isImageToVideo(modelId: string): boolean {
  return modelId.split('/').includes('image-to-video');
}

/**
 * The app a model id belongs to: the status, result and cancel URLs use owner/app only ("fal-ai/pika/v2.2/
 * text-to-video" → "fal-ai/pika"); the `workflows` and `comfy` namespaces add one segment in front.
 */
export function falAppId(modelId: string): string {
  const parts = modelId.split('/');
  return (['workflows', 'comfy'].includes(parts[0]) ? parts.slice(0, 3) : parts.slice(0, 2)).join('/');
}
