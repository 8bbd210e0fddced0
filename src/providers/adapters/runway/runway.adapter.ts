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
  RUNWAY_API_VERSION,
  RUNWAY_CREDITS_PER_USD,
  RUNWAY_IMAGE_CREDITS,
  RUNWAY_IMAGE_MODEL,
  RUNWAY_IMAGE_RATIOS_720P,
  RUNWAY_MAX_DURATION_S,
  RUNWAY_MIN_DURATION_S,
  RUNWAY_POLL_MS,
  RUNWAY_PROMPT_MAX,
  RUNWAY_VIDEO_CREDITS_PER_S,
  RUNWAY_VIDEO_MODEL,
  RunwayCreateResponse,
  RunwayErrorBody,
  RunwayImageRatio,
  RunwayImageToVideoRequest,
  RunwayJob,
  RunwayTask,
  RunwayTextToImageRequest,
  RunwayVideoRatio,
} from './runway.types';

/** gen4_turbo tops out at 1280:720, so 1080p and 4k requests get its largest landscape frame. */
const VIDEO_RATIOS: Record<string, RunwayVideoRatio> = {
  '720p': '1280:720',
  '1080p': '1280:720',
  '4k': '1280:720',
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
  | { kind: 'image'; path: '/v1/text_to_image'; body: RunwayTextToImageRequest };

/** A string field, or the default when it is absent or not a string. */
function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function clampDuration(value: unknown): number {
  const seconds = typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : DEFAULT_DURATION_S;
  return Math.min(RUNWAY_MAX_DURATION_S, Math.max(RUNWAY_MIN_DURATION_S, seconds));
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
 * RunwayML developer API: gen4_turbo image-to-video and gen4_image text-to-image. Asynchronous: `start` creates a
 * task and returns its id; `poll` reads GET /v1/tasks/{id} until it succeeds or fails.
 */
@Injectable()
export class RunwayAdapter extends MediaProvider {
  readonly name = 'runway';
  readonly taskTypes = [TaskType.VideoGeneration, TaskType.ImageGeneration] as const;
  override readonly qualityScore = 0.85;
  override readonly costModel = 'gen4_turbo $0.05/s of video; gen4_image $0.05 (720p) / $0.08 (1080p) per image';

  constructor(private readonly config: AppConfig) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.runway.apiKey;
  }

  override estimateCost(type: TaskType, input: Record<string, unknown>): Cost {
    if (type === TaskType.VideoGeneration) return this.videoCost(clampDuration(input.duration));
    return this.imageCost(IMAGE_RATIOS[text(input.size, '1024x1024')] ?? '1024:1024');
  }

  override validate(type: TaskType, input: Record<string, unknown>): string[] {
    if (!this.supports(type)) return [`type: runway cannot run ${type}`];
    const problems: string[] = [];
    const { prompt } = input;
    // A model named by the client is a routing choice: runway serves only its own.
    const wanted = type === TaskType.VideoGeneration ? RUNWAY_VIDEO_MODEL : RUNWAY_IMAGE_MODEL;
    if (input.model !== undefined && input.model !== wanted) {
      problems.push(`model: runway cannot run ${JSON.stringify(input.model)}`);
    }
    if (typeof prompt !== 'string' || prompt.length === 0) problems.push('prompt: is required');
    else if (prompt.length > RUNWAY_PROMPT_MAX) {
      problems.push(`prompt: runway takes at most ${RUNWAY_PROMPT_MAX} characters`);
    }
    if (type === TaskType.VideoGeneration) {
      if (typeof input.image_url !== 'string' || input.image_url.length === 0) {
        problems.push('image_url: runway needs a start image for video');
      }
      if (typeof input.duration === 'number' && input.duration > RUNWAY_MAX_DURATION_S) {
        problems.push(`duration: runway makes at most ${RUNWAY_MAX_DURATION_S} s`);
      }
      const resolution = input.resolution ?? '720p';
      if (!(typeof resolution === 'string' && resolution in VIDEO_RATIOS)) {
        problems.push(`resolution: runway cannot make ${JSON.stringify(resolution)}`);
      }
    } else {
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
        return this.completed(job, task, res.headers['x-sandbox'] === 'true');
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
      const duration = clampDuration(input.duration);
      return {
        kind: 'video',
        path: '/v1/image_to_video',
        duration,
        body: {
          model: RUNWAY_VIDEO_MODEL,
          promptImage: text(input.image_url, ''),
          promptText,
          ratio: VIDEO_RATIOS[text(input.resolution, '720p')] ?? '1280:720',
          duration,
        },
      };
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
      return {
        ...ref,
        id: ref.id,
        kind: 'video',
        model: typeof ref.model === 'string' ? ref.model : RUNWAY_VIDEO_MODEL,
        ratio: typeof ref.ratio === 'string' ? ref.ratio : '1280:720',
        duration: typeof ref.duration === 'number' ? ref.duration : clampDuration(ctx.input.duration),
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

  private completed(job: RunwayJob, task: RunwayTask, sandbox: boolean): PollOutcome {
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
    const cost = video ? this.videoCost(job.duration ?? DEFAULT_DURATION_S) : this.imageCost(job.ratio, urls.length);
    return {
      kind: 'completed',
      output: { artifacts, data: { model: job.model, runway_task_id: job.id }, sandbox },
      cost,
    };
  }

  /** Runway's progress is a 0..1 fraction; guard against a percentage or garbage. */
  private progress(value: unknown): number | undefined {
    if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
    const fraction = value > 1 ? value / 100 : value;
    return Math.min(1, Math.max(0, fraction));
  }

  private videoCost(seconds: number): Cost {
    // Whole credits divided once, so 7 s stays $0.35 rather than 0.35000000000000003.
    return { amount: (seconds * RUNWAY_VIDEO_CREDITS_PER_S) / RUNWAY_CREDITS_PER_USD, currency: 'USD' };
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
