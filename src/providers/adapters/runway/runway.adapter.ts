import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { IMAGE_SIZES, VIDEO_RESOLUTIONS } from '../../../tasks/dto/task-create.dto';
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
const VIDEO_FRAMES: Record<(typeof VIDEO_RESOLUTIONS)[number], readonly string[]> = {
  '720p': ['1280:720'],
  '1080p': ['1920:1080', '1280:720'],
  '4k': ['1920:1080', '1280:720'],
};

const IMAGE_RATIOS: Record<(typeof IMAGE_SIZES)[number], RunwayImageRatio> = {
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

type VideoInput = TaskInputOf<TaskType.VideoGeneration>;
type ImageInput = TaskInputOf<TaskType.ImageGeneration>;
type RunwayRequest = TaskRequest<TaskType.VideoGeneration | TaskType.ImageGeneration>;

function hasImage(input: VideoInput): boolean {
  return !!input.image_url;
}

/** The video model a task runs on: the one it names, else the default of its endpoint. */
function videoModelOf(input: VideoInput): RunwayVideoModel {
  if (isRunwayVideoModel(input.model)) return input.model;
  return hasImage(input) ? RUNWAY_IMAGE_TO_VIDEO_DEFAULT : RUNWAY_TEXT_TO_VIDEO_DEFAULT;
}

/** The seconds the model makes for the asked duration: the shortest it offers that is at least as long. */
function videoDuration(model: RunwayVideoModel, value: number | undefined): number {
  const wanted = value ?? DEFAULT_DURATION_S;
  const { durations } = RUNWAY_VIDEO_MODEL_SPECS[model];
  return durations.find((d) => d >= wanted) ?? durations[durations.length - 1];
}

function videoRatio(model: RunwayVideoModel, withImage: boolean, resolution: VideoInput['resolution']): string {
  const spec = RUNWAY_VIDEO_MODEL_SPECS[model];
  const offered = withImage ? spec.imageRatios : spec.textRatios;
  const frames = VIDEO_FRAMES[resolution ?? '720p'];
  return frames.find((f) => offered.includes(f)) ?? offered[0];
}

function videoCredits(model: string, seconds: number): number {
  const spec = isRunwayVideoModel(model) ? RUNWAY_VIDEO_MODEL_SPECS[model] : RUNWAY_VIDEO_MODEL_SPECS.gen4_turbo;
  return seconds * spec.creditsPerSecond;
}

function imageRatio(input: ImageInput): RunwayImageRatio {
  return IMAGE_RATIOS[input.size ?? '1024x1024'];
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
export class RunwayAdapter extends MediaProvider<TaskType.VideoGeneration | TaskType.ImageGeneration> {
  readonly name = 'runway';
  // The vendor fetches the media URLs it is given: uploads reach it as signed links.
  override readonly mediaInputs = 'linked';
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

  override estimateCost(task: RunwayRequest): Cost {
    if (task.type === TaskType.VideoGeneration) {
      const model = videoModelOf(task.input);
      return this.videoCost(model, videoDuration(model, task.input.duration));
    }
    return this.imageCost(imageRatio(task.input));
  }

  /** Every platform size and resolution has its runway frame: the model, prompt length, duration and count can fail. */
  override validate(task: RunwayRequest): FieldProblem[] {
    const problems: FieldProblem[] = [];
    if (task.input.prompt.length > RUNWAY_PROMPT_MAX) {
      problems.push(fieldProblem('prompt', `runway takes at most ${RUNWAY_PROMPT_MAX} characters`));
    }
    if (task.type === TaskType.VideoGeneration) {
      const { input } = task;
      // A model named by the client is a routing choice: runway serves only its own.
      if (input.model !== undefined && !isRunwayVideoModel(input.model)) {
        problems.push(fieldProblem('model', `runway cannot run ${JSON.stringify(input.model)}`));
        return problems;
      }
      const model = videoModelOf(input);
      const spec = RUNWAY_VIDEO_MODEL_SPECS[model];
      if (!hasImage(input) && spec.textRatios.length === 0) {
        const textModels = RUNWAY_VIDEO_MODELS.filter((m) => RUNWAY_VIDEO_MODEL_SPECS[m].textRatios.length > 0);
        problems.push(
          fieldProblem('image_url', `${model} needs a start image (${textModels.join(', ')} make video from a prompt)`),
        );
      }
      const longest = spec.durations[spec.durations.length - 1];
      if (input.duration !== undefined && input.duration > longest) {
        problems.push(fieldProblem('duration', `runway's ${model} makes at most ${longest} s`));
      }
    } else {
      const { input } = task;
      if (input.model !== undefined && input.model !== RUNWAY_IMAGE_MODEL) {
        problems.push(fieldProblem('model', `runway cannot run ${JSON.stringify(input.model)}`));
      }
      if (input.n !== undefined && input.n > 1) problems.push(fieldProblem('n', 'runway makes one image per request'));
    }
    return problems;
  }

  async start(ctx: ProviderContext<TaskType.VideoGeneration | TaskType.ImageGeneration>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InvalidRequest);
    const plan = this.plan(ctx);
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

  override async poll(
    ctx: ProviderContext<TaskType.VideoGeneration | TaskType.ImageGeneration>,
    ref: ProviderJobRef,
  ): Promise<PollOutcome> {
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

  private plan(task: RunwayRequest): Plan {
    return task.type === TaskType.VideoGeneration ? this.videoPlan(task.input) : this.imagePlan(task.input);
  }

  private videoPlan(input: VideoInput): Plan & { kind: 'video' } {
    const model = videoModelOf(input);
    const withImage = hasImage(input);
    const duration = videoDuration(model, input.duration);
    const fields = {
      model,
      promptText: input.prompt,
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
        body: { ...fields, promptImage: input.image_url! },
      };
    }
    return { kind: 'video', path: '/v1/text_to_video', duration, body: fields };
  }

  private imagePlan(input: ImageInput): Plan {
    return {
      kind: 'image',
      path: '/v1/text_to_image',
      body: { model: RUNWAY_IMAGE_MODEL, promptText: input.prompt, ratio: imageRatio(input) },
    };
  }

  /**
   * The stored job, completed from the task's input should it predate a field (re-attach after a restart). A video
   * task's job is a video job, an image task's an image job.
   */
  private jobFrom(
    ctx: ProviderContext<TaskType.VideoGeneration | TaskType.ImageGeneration>,
    ref: ProviderJobRef,
  ): RunwayJob {
    if (ctx.type === TaskType.VideoGeneration && ref.kind !== 'image') {
      const plan = this.videoPlan(ctx.input);
      return {
        ...ref,
        id: ref.id,
        kind: 'video',
        model: typeof ref.model === 'string' ? ref.model : plan.body.model,
        ratio: typeof ref.ratio === 'string' ? ref.ratio : plan.body.ratio,
        duration: typeof ref.duration === 'number' ? ref.duration : plan.duration,
      };
    }
    return {
      ...ref,
      id: ref.id,
      kind: 'image',
      model: typeof ref.model === 'string' ? ref.model : RUNWAY_IMAGE_MODEL,
      ratio:
        typeof ref.ratio === 'string'
          ? ref.ratio
          : ctx.type === TaskType.ImageGeneration
            ? imageRatio(ctx.input)
            : '1024:1024',
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
