import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { TaskType } from '../../../tasks/task.enums';
import { classifyStatus, HttpResponse, providerRequest } from '../../provider-http';
import {
  Cost,
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
  isRunwayVideoModel,
  RUNWAY_API_VERSION,
  RUNWAY_CREDITS_PER_USD,
  RUNWAY_IMAGE_CREDITS,
  RUNWAY_IMAGE_MODEL,
  RUNWAY_IMAGE_RATIOS_720P,
  RUNWAY_IMAGE_TO_VIDEO_DEFAULT,
  RUNWAY_POLL_MS,
  RUNWAY_PROMPT_MAX,
  RUNWAY_TEXT_TO_VIDEO_DEFAULT,
  RUNWAY_VIDEO_MODEL_SPECS,
  RUNWAY_VIDEO_MODELS,
  RunwayCreateResponse,
  RunwayErrorBody,
  RunwayImageRatio,
  RunwayImageToVideoRequest,
  RunwayJob,
  RunwayTask,
  RunwayTextToImageRequest,
  RunwayTextToVideoRequest,
  RunwayVideoModel,
} from './runway.types';

/** Landscape frames by the platform's resolution, best first: the first one the model offers is used. */
const VIDEO_FRAMES: Record<string, readonly string[]> = {
  '720p': ['1280:720'],
  '1080p': ['1920:1080', '1280:720'],
  '4k': ['1920:1080', '1280:720'],
};

const IMAGE_RATIOS: Record<string, RunwayImageRatio> = {
  '1024x1024': '1024:1024',
  '1024x1792': '1080:1920',
  '512x512': '720:720',
};

const DEFAULT_DURATION_S = 5;

/** Task JSON is small: anything bigger is not Runway talking. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

type Plan =
  | { kind: 'video'; path: '/v1/image_to_video'; body: RunwayImageToVideoRequest; duration: number }
  | { kind: 'video'; path: '/v1/text_to_video'; body: RunwayTextToVideoRequest; duration: number }
  | { kind: 'image'; path: '/v1/text_to_image'; body: RunwayTextToImageRequest };

/** A string field, or the default when it is absent or not a string. */
function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function hasImage(input: Record<string, unknown>): boolean {
  return typeof input.image_url === 'string' && input.image_url.length > 0;
}

/** The video model a task runs on: the one it names, else the default of its endpoint. */
function videoModelOf(input: Record<string, unknown>): RunwayVideoModel {
  if (isRunwayVideoModel(input.model)) return input.model;
  return hasImage(input) ? RUNWAY_IMAGE_TO_VIDEO_DEFAULT : RUNWAY_TEXT_TO_VIDEO_DEFAULT;
}

/** The seconds the model makes for the asked duration: the shortest it offers that is at least as long. */
function videoDuration(model: RunwayVideoModel, value: unknown): number {
  const wanted = typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : DEFAULT_DURATION_S;
  const { durations } = RUNWAY_VIDEO_MODEL_SPECS[model];
  return durations.find((d) => d >= wanted) ?? durations[durations.length - 1];
}

function videoRatio(model: RunwayVideoModel, withImage: boolean, resolution: unknown): string {
  const spec = RUNWAY_VIDEO_MODEL_SPECS[model];
  const offered = withImage ? spec.imageRatios : spec.textRatios;
  const frames = VIDEO_FRAMES[text(resolution, '720p')] ?? VIDEO_FRAMES['720p'];
  return frames.find((f) => offered.includes(f)) ?? offered[0];
}

function videoCredits(model: string, seconds: number): number {
  const spec = isRunwayVideoModel(model) ? RUNWAY_VIDEO_MODEL_SPECS[model] : RUNWAY_VIDEO_MODEL_SPECS.gen4_turbo;
  return seconds * spec.creditsPerSecond;
}

function imageCredits(ratio: string): number {
  return (RUNWAY_IMAGE_RATIOS_720P as readonly string[]).includes(ratio)
    ? RUNWAY_IMAGE_CREDITS['720p']
    : RUNWAY_IMAGE_CREDITS['1080p'];
}

/** Runway's 4xx bodies are `{error: "…"}`; anything else is passed on as (short) text. */
function errorMessage(res: HttpResponse): string {
  try {
    const body = JSON.parse(res.text()) as RunwayErrorBody;
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: fall through to the raw text
  }
  return res.text().slice(0, 300) || `HTTP ${res.status}`;
}

/**
 * RunwayML developer API: video from a prompt alone (text_to_video, gen4.5 or a Veo model), from a start image
 * (image_to_video, gen4_turbo unless the task names another model), and gen4_image text-to-image. Asynchronous:
 * `start` creates a task and returns its id; `poll` reads GET /v1/tasks/{id} until it succeeds or fails.
 */
@Injectable()
export class RunwayAdapter extends MediaProvider {
  readonly name = 'runway';
  readonly taskTypes = [TaskType.VideoGeneration, TaskType.ImageGeneration] as const;
  override readonly qualityScore = 0.85;
  override readonly costModel =
    'video per second: gen4_turbo $0.05, gen4.5 $0.12, veo3.1_fast $0.10, veo3.1 $0.20, veo3 $0.40; ' +
    'gen4_image $0.05 (720p) / $0.08 (1080p) per image';

  constructor(private readonly config: AppConfig) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.runway.apiKey;
  }

  override baseUrl(): string {
    return this.config.runway.baseUrl;
  }

  override estimateCost(type: TaskType, input: Record<string, unknown>): Cost {
    if (type === TaskType.VideoGeneration) {
      const model = videoModelOf(input);
      return this.videoCost(model, videoDuration(model, input.duration));
    }
    return this.imageCost(IMAGE_RATIOS[text(input.size, '1024x1024')] ?? '1024:1024');
  }

  override validate(type: TaskType, input: Record<string, unknown>): string[] {
    if (!this.supports(type)) return [`type: runway cannot run ${type}`];
    const problems: string[] = [];
    const { prompt } = input;
    if (typeof prompt !== 'string' || prompt.length === 0) problems.push('prompt: is required');
    else if (prompt.length > RUNWAY_PROMPT_MAX) {
      problems.push(`prompt: runway takes at most ${RUNWAY_PROMPT_MAX} characters`);
    }
    if (type === TaskType.VideoGeneration) {
      // A model named by the client is a routing choice: runway serves only its own.
      if (input.model !== undefined && !isRunwayVideoModel(input.model)) {
        problems.push(`model: runway cannot run ${JSON.stringify(input.model)}`);
        return problems;
      }
      const model = videoModelOf(input);
      const spec = RUNWAY_VIDEO_MODEL_SPECS[model];
      if (!hasImage(input) && spec.textRatios.length === 0) {
        const textModels = RUNWAY_VIDEO_MODELS.filter((m) => RUNWAY_VIDEO_MODEL_SPECS[m].textRatios.length > 0);
        problems.push(`image_url: ${model} needs a start image (${textModels.join(', ')} make video from a prompt)`);
      }
      const longest = spec.durations[spec.durations.length - 1];
      if (typeof input.duration === 'number' && input.duration > longest) {
        problems.push(`duration: runway's ${model} makes at most ${longest} s`);
      }
      const resolution = input.resolution ?? '720p';
      if (!(typeof resolution === 'string' && resolution in VIDEO_FRAMES)) {
        problems.push(`resolution: runway cannot make ${JSON.stringify(resolution)}`);
      }
    } else {
      if (input.model !== undefined && input.model !== RUNWAY_IMAGE_MODEL) {
        problems.push(`model: runway cannot run ${JSON.stringify(input.model)}`);
      }
      const size = input.size ?? '1024x1024';
      if (!(typeof size === 'string' && size in IMAGE_RATIOS))
        problems.push(`size: runway cannot make ${JSON.stringify(size)}`);
      if (typeof input.n === 'number' && input.n > 1) problems.push('n: runway makes one image per request');
    }
    return problems;
  }

  async start(ctx: ProviderContext): Promise<StartOutcome> {
    const problems = this.validate(ctx.type, ctx.input);
    if (problems.length > 0) throw ProviderError.permanent(ProviderErrorCode.InvalidRequest, problems.join('; '));
    const plan = this.plan(ctx.type, ctx.input);
    const res = await this.call('POST', plan.path, ctx.signal, plan.body);
    if (res.status < 200 || res.status >= 300) throw classifyStatus(this.name, res, errorMessage(res));
    const { id } = res.json<RunwayCreateResponse>();
    if (typeof id !== 'string' || id.length === 0) {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, 'runway accepted the task without an id');
    }
    const job: RunwayJob = {
      id,
      kind: plan.kind,
      model: plan.body.model,
      ratio: plan.body.ratio,
      ...(plan.kind === 'video' ? { duration: plan.duration } : {}),
    };
    return { kind: 'submitted', job, pollAfterMs: RUNWAY_POLL_MS };
  }

  override async poll(ctx: ProviderContext, ref: ProviderJobRef): Promise<PollOutcome> {
    const job = this.jobFrom(ctx, ref);
    const res = await this.call('GET', `/v1/tasks/${encodeURIComponent(job.id)}`, ctx.signal);
    if (res.status === 404) {
      throw ProviderError.permanent(ProviderErrorCode.NotFound, `job expired: runway has no task ${job.id}`, 404);
    }
    if (res.status < 200 || res.status >= 300) throw classifyStatus(this.name, res, errorMessage(res));
    const task = res.json<RunwayTask>();
    switch (task.status) {
      case 'PENDING':
      case 'THROTTLED':
        return { kind: 'running', pollAfterMs: RUNWAY_POLL_MS };
      case 'RUNNING':
        return { kind: 'running', progress: this.progress(task.progress), pollAfterMs: RUNWAY_POLL_MS };
      case 'SUCCEEDED':
        return this.completed(job, task);
      case 'FAILED': {
        const reason = `runway task failed: ${task.failure ?? 'no reason given'}`;
        const detail = task.failureCode ? `${reason} (${task.failureCode})` : reason;
        if (task.failureCode?.startsWith('SAFETY.'))
          throw ProviderError.permanent(ProviderErrorCode.ContentPolicy, detail);
        throw ProviderError.permanent(ProviderErrorCode.JobFailed, detail);
      }
      case 'CANCELLED':
        throw ProviderError.permanent(ProviderErrorCode.JobFailed, 'cancelled at the provider');
      default: {
        // Runway has no TIMED_OUT today; treat one like any provider-side timeout should it appear.
        const status = String((task as { status?: unknown }).status);
        if (status === 'TIMED_OUT') throw ProviderError.transient(ProviderErrorCode.Timeout, 'runway task timed out');
        throw ProviderError.transient(ProviderErrorCode.BadResponse, `runway answered unknown task status ${status}`);
      }
    }
  }

  /** DELETE cancels a running task (and deletes a finished one); a task already gone is fine. */
  override async cancel(ref: ProviderJobRef): Promise<void> {
    const res = await this.call('DELETE', `/v1/tasks/${encodeURIComponent(ref.id)}`);
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
    throw classifyStatus(this.name, res, errorMessage(res));
  }

  private plan(type: TaskType, input: Record<string, unknown>): Plan {
    const promptText = text(input.prompt, '');
    if (type === TaskType.VideoGeneration) {
      const model = videoModelOf(input);
      const withImage = hasImage(input);
      const duration = videoDuration(model, input.duration);
      const fields = {
        model,
        promptText,
        ratio: videoRatio(model, withImage, input.resolution),
        duration,
        // Veo 3.1 prices sound extra: the platform asks for none.
        ...(RUNWAY_VIDEO_MODEL_SPECS[model].audio ? { audio: false } : {}),
      };
      if (withImage) {
        return {
          kind: 'video',
          path: '/v1/image_to_video',
          duration,
          body: { ...fields, promptImage: text(input.image_url, '') },
        };
      }
      return { kind: 'video', path: '/v1/text_to_video', duration, body: fields };
    }
    return {
      kind: 'image',
      path: '/v1/text_to_image',
      body: {
        model: RUNWAY_IMAGE_MODEL,
        promptText,
        ratio: IMAGE_RATIOS[text(input.size, '1024x1024')] ?? '1024:1024',
      },
    };
  }

  /** The stored job, completed from the task's input should it predate a field (re-attach after a restart). */
  private jobFrom(ctx: ProviderContext, ref: ProviderJobRef): RunwayJob {
    const kind = ref.kind === 'video' || ref.kind === 'image' ? ref.kind : undefined;
    if (kind === 'video' || (!kind && ctx.type === TaskType.VideoGeneration)) {
      const plan = this.plan(TaskType.VideoGeneration, ctx.input);
      return {
        ...ref,
        id: ref.id,
        kind: 'video',
        model: typeof ref.model === 'string' ? ref.model : plan.body.model,
        ratio: typeof ref.ratio === 'string' ? ref.ratio : plan.body.ratio,
        duration: typeof ref.duration === 'number' ? ref.duration : (plan as { duration: number }).duration,
      };
    }
    return {
      ...ref,
      id: ref.id,
      kind: 'image',
      model: typeof ref.model === 'string' ? ref.model : RUNWAY_IMAGE_MODEL,
      ratio:
        typeof ref.ratio === 'string' ? ref.ratio : (IMAGE_RATIOS[text(ctx.input.size, '1024x1024')] ?? '1024:1024'),
    };
  }

  private completed(job: RunwayJob, task: RunwayTask): PollOutcome {
    const urls = Array.isArray(task.output) ? task.output.filter((u) => typeof u === 'string' && u.length > 0) : [];
    if (urls.length === 0) {
      throw ProviderError.permanent(ProviderErrorCode.BadResponse, `runway task ${job.id} succeeded without output`);
    }
    const video = job.kind === 'video';
    const ext = video ? 'mp4' : 'png';
    const artifacts: ProviderArtifact[] = urls.map((url, i) => ({
      url,
      contentType: video ? 'video/mp4' : 'image/png',
      filename: urls.length === 1 ? `${job.id}.${ext}` : `${job.id}-${i + 1}.${ext}`,
    }));
    const cost = video
      ? this.videoCost(job.model, job.duration ?? DEFAULT_DURATION_S)
      : this.imageCost(job.ratio, urls.length);
    return {
      kind: 'completed',
      output: { artifacts, data: { model: job.model, runway_task_id: job.id } },
      cost,
    };
  }

  /** Runway's progress is a 0..1 fraction; guard against a percentage or garbage. */
  private progress(value: unknown): number | undefined {
    if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
    const fraction = value > 1 ? value / 100 : value;
    return Math.min(1, Math.max(0, fraction));
  }

  private videoCost(model: string, seconds: number): Cost {
    // Whole credits divided once, so 7 s stays $0.35 rather than 0.35000000000000003.
    return { amount: videoCredits(model, seconds) / RUNWAY_CREDITS_PER_USD, currency: 'USD' };
  }

  private imageCost(ratio: string, images = 1): Cost {
    return { amount: (imageCredits(ratio) * images) / RUNWAY_CREDITS_PER_USD, currency: 'USD' };
  }

  private async call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    signal?: AbortSignal,
    body?: unknown,
  ): Promise<HttpResponse> {
    const { apiKey, baseUrl } = this.config.runway;
    if (!apiKey) throw ProviderError.permanent(ProviderErrorCode.AuthFailed, 'runway has no API key configured');
    const headers: Record<string, string> = {
      Authorization: `Bearer ${apiKey}`,
      'X-Runway-Version': RUNWAY_API_VERSION,
      Accept: 'application/json',
    };
    // Only with a body: a JSON content type on an empty DELETE is a 400 on strict servers.
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return providerRequest(this.name, {
      method,
      url: `${baseUrl}${path}`,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal,
      maxBytes: MAX_RESPONSE_BYTES,
    });
  }
}
