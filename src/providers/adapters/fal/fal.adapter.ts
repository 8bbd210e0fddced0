import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { classifyStatus, HttpResponse, providerRequest } from '../../provider-http';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  PollOutcome,
  ProviderArtifact,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  ProviderJobRef,
  StartOutcome,
} from '../../provider.port';
import {
  FAL_POLL_MS,
  FAL_VIDEO_RESOLUTIONS,
  falAppId,
  FalErrorBody,
  FalImageInput,
  FalImageResult,
  FalQueueStatus,
  FalQueueSubmitted,
  FalVideoDuration,
  FalVideoInput,
  FalVideoResolution,
  FalVideoResult,
  isImageToVideo,
} from './fal.types';

/**
 * Published prices (docs/providers.md): Pika v2.2 on fal, text- and image-to-video, a 5-second video at 720p $0.20
 * and at 1080p $0.45 (10 s taken as twice that); FLUX.1 per megapixel (rounded up), [dev] $0.025, [schnell]
 * $0.003. A model not listed costs what the default of its kind does.
 */
const VIDEO_PRICE_PER_5S: Record<string, Record<FalVideoResolution, number>> = {
  'fal-ai/pika/v2.2/text-to-video': { '720p': 0.2, '1080p': 0.45 },
  'fal-ai/pika/v2.2/image-to-video': { '720p': 0.2, '1080p': 0.45 },
};
const IMAGE_PRICE_PER_MP: Record<string, number> = { 'fal-ai/flux/dev': 0.025, 'fal-ai/flux/schnell': 0.003 };
const DEFAULT_VIDEO_PRICE = VIDEO_PRICE_PER_5S['fal-ai/pika/v2.2/text-to-video'];
const DEFAULT_IMAGE_PRICE = IMAGE_PRICE_PER_MP['fal-ai/flux/dev'];
/** fal counts a megapixel as 1024 × 1024 pixels. */
const PIXELS_PER_MP = 1024 * 1024;

type FalTypes = TaskType.VideoGeneration | TaskType.ImageGeneration;
type VideoInput = TaskInputOf<TaskType.VideoGeneration>;
type ImageInput = TaskInputOf<TaskType.ImageGeneration>;

/** The platform's image sizes, sent as exact dimensions. */
const IMAGE_SIZES: Record<NonNullable<ImageInput['size']>, { width: number; height: number }> = {
  '512x512': { width: 512, height: 512 },
  '1024x1024': { width: 1024, height: 1024 },
  '1024x1792': { width: 1024, height: 1792 },
};
const MAX_IMAGES = 4;
const MAX_VIDEO_S = 10;

/** Status and request JSON is small; results are a few URLs. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/** What `start` stores on the task: any worker can poll, price, name and cancel the request from it. */
export interface FalJob extends ProviderJobRef {
  id: string;
  model: string;
  kind: 'video' | 'image';
  status_url: string;
  response_url: string;
  cancel_url: string;
  /** Video: seconds and resolution asked for. */
  duration?: FalVideoDuration;
  resolution?: FalVideoResolution;
  /** Image: megapixels of each image (rounded up). */
  megapixels?: number;
  /** Place in fal's queue (1: next) when last seen. */
  queue_position?: number;
}

type Plan =
  | { kind: 'video'; model: string; body: FalVideoInput; duration: FalVideoDuration; resolution: FalVideoResolution }
  | { kind: 'image'; model: string; body: FalImageInput; megapixels: number };

/** fal's video models make 5 or 10 seconds: the platform's duration goes to the nearest that is not shorter. */
function videoDuration(seconds = 5): FalVideoDuration {
  return seconds <= 5 ? 5 : 10;
}

function videoResolution(input: VideoInput): FalVideoResolution {
  return input.resolution === '1080p' ? '1080p' : '720p';
}

function imageSize(input: ImageInput): { width: number; height: number } {
  return IMAGE_SIZES[input.size ?? '1024x1024'];
}

function megapixelsOf(size: { width: number; height: number }): number {
  return Math.max(1, Math.ceil((size.width * size.height) / PIXELS_PER_MP));
}

/** The message of a fal error body: the `detail` string, or each entry of the list as "field: message". */
export function falMessage(res: HttpResponse): string {
  let body: FalErrorBody | undefined;
  try {
    body = JSON.parse(res.text()) as FalErrorBody;
  } catch {
    return res.text().slice(0, 300) || `HTTP ${res.status}`;
  }
  const detail = body?.detail;
  if (typeof detail === 'string') return body?.error_type ? `${detail} (${body.error_type})` : detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((entry) => {
        const field = (entry?.loc ?? []).filter((part) => part !== 'body').join('.');
        return field ? `${field}: ${entry?.msg}` : String(entry?.msg);
      })
      .join('; ');
  }
  return `HTTP ${res.status}`;
}

/** Whether an answer is fal's own error (a JSON `detail`), not a proxy's page. */
function isFalError(res: HttpResponse): boolean {
  try {
    return (JSON.parse(res.text()) as FalErrorBody)?.detail !== undefined;
  } catch {
    return false;
  }
}

function hasDetailType(res: HttpResponse, type: string): boolean {
  try {
    const detail = (JSON.parse(res.text()) as FalErrorBody)?.detail;
    return Array.isArray(detail) && detail.some((entry) => entry?.type === type);
  } catch {
    return false;
  }
}

/**
 * fal's model APIs through its queue (queue.fal.run): Pika text- and image-to-video and any other video or image
 * model of FAL_VIDEO_MODELS / FAL_IMAGE_MODELS. Asynchronous: `start` submits and stores the request with the
 * status, result and cancel URLs fal answered; `poll` reads the status (its queue position becomes the task's
 * `queue_position`) and, once COMPLETED, the result.
 */
@Injectable()
export class FalAdapter extends MediaProvider<FalTypes> {
  readonly name = 'fal';
  // The vendor fetches the media URLs it is given: uploads reach it as signed links.
  override readonly mediaInputs = 'linked';
  readonly taskTypes = [TaskType.VideoGeneration, TaskType.ImageGeneration] as const;
  override readonly qualityScore = 0.8;
  override readonly costModel =
    'Pika v2.2 $0.20 (720p) / $0.45 (1080p) per 5 s of video; FLUX.1 [dev] $0.025 per megapixel';

  constructor(private readonly config: AppConfig) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.fal.apiKey;
  }

  override baseUrl(): string {
    return this.config.fal.baseUrl;
  }

  /** Every platform image size is one fal makes: the model, the video's length and resolution, and the count can fail. */
  override validate(task: TaskRequest<FalTypes>): FieldProblem[] {
    const problems: FieldProblem[] = [];
    const model = this.modelFor(task);
    if (typeof model !== 'string') problems.push(model.problem);
    if (task.type === TaskType.VideoGeneration) {
      const { duration, resolution = '720p' } = task.input;
      if (duration !== undefined && duration > MAX_VIDEO_S) {
        problems.push(fieldProblem('duration', `fal's video models make at most ${MAX_VIDEO_S} s (5 or 10)`));
      }
      if (!(FAL_VIDEO_RESOLUTIONS as readonly string[]).includes(resolution)) {
        problems.push(
          fieldProblem(
            'resolution',
            `fal makes ${FAL_VIDEO_RESOLUTIONS.join(' or ')} video, not ${JSON.stringify(resolution)}`,
          ),
        );
      }
    } else if (task.input.n !== undefined && task.input.n > MAX_IMAGES) {
      problems.push(fieldProblem('n', `fal makes at most ${MAX_IMAGES} images`));
    }
    return problems;
  }

  override estimateCost(task: TaskRequest<FalTypes>): Cost {
    const model = this.modelFor(task);
    const id = typeof model === 'string' ? model : '';
    if (task.type === TaskType.VideoGeneration) {
      return this.videoCost(id, videoDuration(task.input.duration), videoResolution(task.input));
    }
    return this.imageCost(id, megapixelsOf(imageSize(task.input)), task.input.n ?? 1);
  }

  async start(ctx: ProviderContext<FalTypes>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InvalidRequest);
    const plan = this.plan(ctx);
    const res = await this.call('POST', `${this.config.fal.baseUrl}/${plan.model}`, ctx.signal, plan.body);
    if (res.status < 200 || res.status >= 300) throw this.failure(res);
    const submitted = res.json<FalQueueSubmitted>();
    if (typeof submitted?.request_id !== 'string' || submitted.request_id === '') {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, 'fal accepted the request without a request_id');
    }
    const id = submitted.request_id;
    const job: FalJob = {
      id,
      model: plan.model,
      kind: plan.kind,
      status_url: this.trusted(submitted.status_url, plan.model, id, '/status'),
      response_url: this.trusted(submitted.response_url, plan.model, id, ''),
      cancel_url: this.trusted(submitted.cancel_url, plan.model, id, '/cancel'),
      ...(plan.kind === 'video'
        ? { duration: plan.duration, resolution: plan.resolution }
        : { megapixels: plan.megapixels }),
      ...(typeof submitted.queue_position === 'number' && { queue_position: submitted.queue_position + 1 }),
    };
    return { kind: 'submitted', job, pollAfterMs: FAL_POLL_MS };
  }

  override async poll(ctx: ProviderContext<FalTypes>, ref: ProviderJobRef): Promise<PollOutcome> {
    const job = this.jobFrom(ctx, ref);
    const res = await this.call('GET', job.status_url, ctx.signal);
    if (res.status === 404) {
      throw ProviderError.permanent(ProviderErrorCode.NotFound, `job expired: fal has no request ${job.id}`, 404);
    }
    if (res.status < 200 || res.status >= 300) throw this.failure(res);
    const status = res.json<FalQueueStatus>();
    switch (status?.status) {
      case 'IN_QUEUE': {
        const ahead = typeof status.queue_position === 'number' ? Math.max(0, status.queue_position) : undefined;
        return {
          kind: 'running',
          pollAfterMs: FAL_POLL_MS,
          queuePosition: ahead === undefined ? undefined : ahead + 1,
        };
      }
      case 'IN_PROGRESS':
        return { kind: 'running', pollAfterMs: FAL_POLL_MS };
      case 'COMPLETED':
        return this.result(ctx, job);
      default:
        throw ProviderError.transient(
          ProviderErrorCode.BadResponse,
          `fal answered unknown request status ${String((status as { status?: unknown })?.status)}`,
        );
    }
  }

  /** PUT cancel: a queued request is dropped, a running one is told to stop; one already done or gone is fine. */
  override async cancel(ref: ProviderJobRef): Promise<void> {
    if (typeof ref.model !== 'string') return; // not a job this adapter stored
    const url = this.trusted(ref.cancel_url, ref.model, ref.id, '/cancel');
    const res = await this.call('PUT', url);
    if ((res.status >= 200 && res.status < 300) || res.status === 400 || res.status === 404) return;
    throw this.failure(res);
  }

  /** The result of a completed request: the files, or the model's error for good. */
  private async result(ctx: ProviderContext<FalTypes>, job: FalJob): Promise<PollOutcome> {
    const res = await this.call('GET', job.response_url, ctx.signal);
    if (res.status < 200 || res.status >= 300) {
      if (res.status === 404) {
        throw ProviderError.permanent(ProviderErrorCode.NotFound, `job expired: fal has no result for ${job.id}`, 404);
      }
      if (res.status === 499 || res.headers['x-fal-error-type'] === 'client_cancelled') {
        throw ProviderError.permanent(ProviderErrorCode.JobFailed, 'cancelled at the provider', res.status);
      }
      // The request itself failed (fal already retried runner failures): submitting the same again is the task's
      // retry to decide, not another poll of this one.
      if (res.status >= 500 && isFalError(res)) {
        throw ProviderError.permanent(
          ProviderErrorCode.JobFailed,
          `fal request failed: ${falMessage(res)}`.slice(0, 500),
          res.status,
        );
      }
      throw this.failure(res);
    }
    const artifacts: ProviderArtifact[] = [];
    let cost: Cost;
    if (job.kind === 'video') {
      const video = res.json<FalVideoResult>()?.video;
      if (typeof video?.url !== 'string' || video.url === '') {
        throw ProviderError.permanent(ProviderErrorCode.BadResponse, `fal request ${job.id} completed without a video`);
      }
      artifacts.push({ url: video.url, contentType: video.content_type || 'video/mp4', filename: `${job.id}.mp4` });
      cost = this.videoCost(job.model, job.duration ?? 5, job.resolution ?? '720p');
    } else {
      const images = res.json<FalImageResult>()?.images;
      const urls = Array.isArray(images) ? images.filter((image) => typeof image?.url === 'string' && image.url) : [];
      if (urls.length === 0) {
        throw ProviderError.permanent(ProviderErrorCode.BadResponse, `fal request ${job.id} completed without images`);
      }
      urls.forEach((image, i) => {
        const contentType = image.content_type || 'image/jpeg';
        const ext = EXTENSIONS[contentType] ?? 'img';
        const filename = urls.length === 1 ? `${job.id}.${ext}` : `${job.id}-${i + 1}.${ext}`;
        artifacts.push({ url: image.url, contentType, filename });
      });
      cost = this.imageCost(job.model, job.megapixels ?? 1, urls.length);
    }
    return {
      kind: 'completed',
      output: { artifacts, data: { model: job.model, fal_request_id: job.id } },
      cost,
    };
  }

  /**
   * The model a task runs on: the one it names (`model`, one of the lists), else the first of the list that fits —
   * for video, an image-to-video model when there is a start image and a text-to-video one when there is not.
   */
  private modelFor(task: TaskRequest<FalTypes>): string | { problem: FieldProblem } {
    const { videoModels, imageModels } = this.config.fal;
    const wanted = task.input.model || undefined;
    if (task.type === TaskType.ImageGeneration) {
      if (wanted === undefined) return imageModels[0];
      return imageModels.includes(wanted)
        ? wanted
        : { problem: fieldProblem('model', `fal cannot serve "${wanted}" (it runs ${imageModels.join(', ')})`) };
    }
    const fromImage = !!task.input.image_url;
    const fitting = videoModels.filter((id) => isImageToVideo(id) === fromImage);
    if (wanted === undefined) {
      return (
        fitting[0] ?? {
          problem: fromImage
            ? fieldProblem('image_url', "none of fal's video models starts from an image")
            : fieldProblem('image_url', "fal's video models need a start image"),
        }
      );
    }
    if (!videoModels.includes(wanted)) {
      return { problem: fieldProblem('model', `fal cannot serve "${wanted}" (it runs ${videoModels.join(', ')})`) };
    }
    if (!fitting.includes(wanted)) {
      return {
        problem: fromImage
          ? fieldProblem('model', `"${wanted}" makes video from a prompt alone, not from image_url`)
          : fieldProblem('image_url', `"${wanted}" needs a start image`),
      };
    }
    return wanted;
  }

  private plan(task: TaskRequest<FalTypes>): Plan {
    const model = this.modelFor(task) as string;
    if (task.type === TaskType.VideoGeneration) {
      const { prompt, image_url: imageUrl } = task.input;
      const duration = videoDuration(task.input.duration);
      const resolution = videoResolution(task.input);
      return {
        kind: 'video',
        model,
        duration,
        resolution,
        body: { prompt, ...(imageUrl && { image_url: imageUrl }), duration, resolution },
      };
    }
    const size = imageSize(task.input);
    return {
      kind: 'image',
      model,
      megapixels: megapixelsOf(size),
      body: { prompt: task.input.prompt, image_size: size, num_images: task.input.n ?? 1 },
    };
  }

  /**
   * A URL fal answered, used only when it points at the configured queue (it carries our key); else the one fal
   * documents, built from the model's app (owner/app, without the endpoint path).
   */
  private trusted(url: unknown, model: string, id: string, suffix: string): string {
    const base = this.config.fal.baseUrl;
    if (typeof url === 'string' && (url === base || url.startsWith(`${base}/`))) return url;
    return `${base}/${falAppId(model)}/requests/${encodeURIComponent(id)}${suffix}`;
  }

  /** The stored job, completed from the task's input should it predate a field (re-attach after a restart). */
  private jobFrom(ctx: ProviderContext<FalTypes>, ref: ProviderJobRef): FalJob {
    const kind =
      ref.kind === 'video' || ref.kind === 'image'
        ? ref.kind
        : ctx.type === TaskType.VideoGeneration
          ? 'video'
          : 'image';
    const chosen = this.modelFor(ctx);
    const model = typeof ref.model === 'string' ? ref.model : typeof chosen === 'string' ? chosen : undefined;
    if (!model)
      throw ProviderError.permanent(ProviderErrorCode.NotFound, `fal request ${ref.id}: its model is unknown`);
    const video = ctx.type === TaskType.VideoGeneration ? ctx.input : undefined;
    const size = ctx.type === TaskType.ImageGeneration ? imageSize(ctx.input) : IMAGE_SIZES['1024x1024'];
    return {
      ...ref,
      id: ref.id,
      model,
      kind,
      status_url: this.trusted(ref.status_url, model, ref.id, '/status'),
      response_url: this.trusted(ref.response_url, model, ref.id, ''),
      cancel_url: this.trusted(ref.cancel_url, model, ref.id, '/cancel'),
      duration: (ref.duration as FalVideoDuration | undefined) ?? videoDuration(video?.duration),
      resolution: (ref.resolution as FalVideoResolution | undefined) ?? (video ? videoResolution(video) : '720p'),
      megapixels: typeof ref.megapixels === 'number' ? ref.megapixels : megapixelsOf(size),
    };
  }

  /** A non-2xx answer: 422 names the fields (content-policy ones are final as such), the rest by status. */
  private failure(res: HttpResponse): ProviderError {
    const message = falMessage(res);
    if (res.status === 422 && hasDetailType(res, 'content_policy_violation')) {
      return ProviderError.permanent(
        ProviderErrorCode.ContentPolicy,
        `fal answered 422: ${message}`.slice(0, 500),
        422,
      );
    }
    return classifyStatus(this.name, res, message);
  }

  private videoCost(model: string, duration: number, resolution: FalVideoResolution): Cost {
    const per5s = (VIDEO_PRICE_PER_5S[model] ?? DEFAULT_VIDEO_PRICE)[resolution];
    return { amount: Math.round(per5s * (duration / 5) * 1e6) / 1e6, currency: 'USD' };
  }

  private imageCost(model: string, megapixels: number, images: number): Cost {
    const perMp = IMAGE_PRICE_PER_MP[model] ?? DEFAULT_IMAGE_PRICE;
    return { amount: Math.round(perMp * megapixels * images * 1e6) / 1e6, currency: 'USD' };
  }

  private async call(
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    signal?: AbortSignal,
    body?: unknown,
  ): Promise<HttpResponse> {
    const { apiKey } = this.config.fal;
    if (!apiKey) throw ProviderError.permanent(ProviderErrorCode.AuthFailed, 'fal has no key configured');
    const headers: Record<string, string> = { authorization: `Key ${apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return providerRequest(this.name, {
      method,
      url,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal,
      maxBytes: MAX_RESPONSE_BYTES,
    });
  }
}
