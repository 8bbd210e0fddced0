import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { providerCallbackUrl } from '../../provider-callbacks';
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
  ProviderOutput,
  StartOutcome,
} from '../../provider.port';
import {
  RUNPOD_EXECUTION_TIMEOUT_MS,
  RUNPOD_GPU_S_FLAT,
  RUNPOD_GPU_S_PER_CLIP_S,
  RUNPOD_POLL_MAX_MS,
  RUNPOD_POLL_MIN_MS,
  RUNPOD_USD_PER_GPU_SECOND,
  RunpodHealth,
  RunpodJob,
  RunpodOperation,
  RunpodRunRequest,
  RunpodRunResponse,
  RunpodStatusResponse,
  RunpodVideo,
} from './runpod.types';

/** Status JSON carries the worker's output (a list of URLs): 4 MiB is plenty. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isVideo(value: unknown): value is RunpodVideo {
  return (
    isRecord(value) &&
    typeof value.video_url === 'string' &&
    value.video_url.length > 0 &&
    (typeof value.id === 'string' || typeof value.id === 'number') &&
    typeof value.filename === 'string'
  );
}

/** RunPod documents no error body; take `error` or `message` when it is JSON, else the start of the text. */
function errorMessage(res: HttpResponse): string {
  try {
    const body = JSON.parse(res.text()) as unknown;
    if (isRecord(body)) {
      if (typeof body.error === 'string') return body.error;
      if (typeof body.message === 'string') return body.message;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return res.text().slice(0, 300) || `HTTP ${res.status}`;
}

/** A handler's error may be a string or an object (error_type, error_message, traceback). */
function describeError(error: unknown): string {
  if (typeof error === 'string' && error.length > 0) return error;
  if (isRecord(error) && typeof error.error_message === 'string') return error.error_message;
  if (error === undefined || error === null) return 'no reason given';
  return JSON.stringify(error).slice(0, 500);
}

/**
 * The platform's media worker starts a refused input's error with its code (`input_invalid: …`, or `error_type` in
 * the object form), so a bad image fails the task with the same code as on local ffmpeg.
 */
const WORKER_ERROR_CODES: readonly string[] = [
  ProviderErrorCode.InputInvalid,
  ProviderErrorCode.InputUnreachable,
  ProviderErrorCode.InputTooLarge,
];

function workerErrorCode(error: unknown, reason: string): string {
  if (isRecord(error) && typeof error.error_type === 'string' && WORKER_ERROR_CODES.includes(error.error_type)) {
    return error.error_type;
  }
  const prefix = /^([a-z_]+):/.exec(reason)?.[1];
  return prefix && WORKER_ERROR_CODES.includes(prefix) ? prefix : ProviderErrorCode.JobFailed;
}

/** USD, rounded to a millionth so GPU-second sums do not carry float noise. */
function usd(gpuSeconds: number): Cost {
  return { amount: Math.round(gpuSeconds * RUNPOD_USD_PER_GPU_SECOND * 1e6) / 1e6, currency: 'USD' };
}

/** Estimated GPU seconds of a job: RUNPOD_GPU_S_PER_CLIP_S per second of img2vid clip, RUNPOD_GPU_S_FLAT otherwise. */
function expectedGpuSeconds(task: TaskRequest<RunpodOperation>): number {
  if (task.type !== TaskType.Img2Vid) return RUNPOD_GPU_S_FLAT;
  const clipSeconds = task.input.images.reduce((sum, image) => sum + image.duracao, 0);
  return clipSeconds * RUNPOD_GPU_S_PER_CLIP_S;
}

/** The output file name a caption or addaudio task asks for. */
function outputFilenameOf(task: TaskRequest): string | undefined {
  return task.type === TaskType.Caption || task.type === TaskType.AddAudio ? task.input.output_filename : undefined;
}

/**
 * The progress of a job running on a worker: RunPod reports none of ours, so its execution time against the GPU time
 * expected for the input, from 0.01 (it runs) to 0.95 (the end is for COMPLETED to say).
 */
function runningProgress(task: TaskRequest<RunpodOperation>, status: RunpodStatusResponse): number {
  const expectedMs = expectedGpuSeconds(task) * 1000;
  const ran = Number(status.executionTime) || 0;
  const share = expectedMs > 0 ? ran / expectedMs : 0;
  return Math.round(Math.min(0.95, Math.max(0.01, share)) * 1000) / 1000;
}

/**
 * RunPod Serverless endpoint running our own media worker (img2vid, caption, addaudio). Asynchronous: `start` queues
 * a job with POST /run; `poll` reads GET /status/{id}. Billed per GPU second of execution.
 */
@Injectable()
export class RunpodAdapter extends MediaProvider<RunpodOperation> {
  readonly name = 'runpod';
  // The vendor fetches the media URLs it is given: uploads reach it as signed links.
  override readonly mediaInputs = 'linked';
  readonly taskTypes = [TaskType.Img2Vid, TaskType.Caption, TaskType.AddAudio] as const;
  override readonly qualityScore = 0.7;
  override readonly costModel = `per second of GPU time ($${RUNPOD_USD_PER_GPU_SECOND}/s default)`;

  constructor(private readonly config: AppConfig) {
    super();
  }

  isConfigured(): boolean {
    const { apiKey, endpointId } = this.config.runpod;
    return !!(apiKey && endpointId);
  }

  override baseUrl(): string {
    return this.config.runpod.baseUrl;
  }

  override estimateCost(task: TaskRequest<RunpodOperation>): Cost {
    return usd(expectedGpuSeconds(task));
  }

  // No validate(): the worker takes every input the DTOs accept (the fields it needs are required there).

  async start(ctx: ProviderContext<RunpodOperation>): Promise<StartOutcome> {
    const body: RunpodRunRequest = {
      // The operation last: an input field of that name must not redirect the worker.
      input: { ...ctx.input, operation: ctx.type },
      policy: { executionTimeout: RUNPOD_EXECUTION_TIMEOUT_MS[ctx.type] },
    };
    // With PUBLIC_URL, RunPod calls back when the job ends, and the task polls it then rather than at its next look.
    const webhook = providerCallbackUrl(this.config, this.name, ctx.taskId);
    if (webhook) body.webhook = webhook;
    const res = await this.call('POST', '/run', ctx.signal, body);
    if (res.status < 200 || res.status >= 300) throw classifyStatus(this.name, res, errorMessage(res));
    const { id } = res.json<RunpodRunResponse>();
    if (typeof id !== 'string' || id.length === 0) {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, 'runpod accepted the job without an id');
    }
    const job: RunpodJob = { id, submittedAt: Date.now() };
    return { kind: 'submitted', job, pollAfterMs: RUNPOD_POLL_MIN_MS };
  }

  override async poll(ctx: ProviderContext<RunpodOperation>, job: ProviderJobRef): Promise<PollOutcome> {
    const res = await this.call('GET', `/status/${encodeURIComponent(job.id)}`, ctx.signal);
    // Results are kept 30 min after the end (and a job lives at most its ttl): then RunPod forgets the id.
    if (res.status === 404) {
      throw ProviderError.permanent(ProviderErrorCode.NotFound, `job expired: runpod has no job ${job.id}`, 404);
    }
    if (res.status < 200 || res.status >= 300) throw classifyStatus(this.name, res, errorMessage(res));
    const status = res.json<RunpodStatusResponse>();
    switch (status.status) {
      case 'IN_QUEUE':
        return { kind: 'running', pollAfterMs: this.pollAfter(job, status) };
      case 'IN_PROGRESS':
      case 'RUNNING':
        // Progress tells the job's clients it left RunPod's queue and runs on a worker.
        return {
          kind: 'running',
          progress: runningProgress(ctx, status),
          pollAfterMs: this.pollAfter(job, status),
        };
      case 'COMPLETED':
        return {
          kind: 'completed',
          output: this.output(ctx, status),
          cost: usd((Number(status.executionTime) || 0) / 1000),
        };
      case 'FAILED': {
        const reason = describeError(status.error);
        throw ProviderError.permanent(workerErrorCode(status.error, reason), `runpod job failed: ${reason}`);
      }
      case 'TIMED_OUT':
        throw ProviderError.transient(ProviderErrorCode.Timeout, 'runpod job exceeded its execution timeout');
      case 'CANCELLED':
        throw ProviderError.permanent(ProviderErrorCode.JobFailed, 'cancelled at the provider');
      default:
        throw ProviderError.transient(
          ProviderErrorCode.BadResponse,
          `runpod answered unknown job status ${String((status as { status?: unknown }).status)}`,
        );
    }
  }

  /** Stops a queued or running job; a job RunPod no longer knows is fine. */
  override async cancel(job: ProviderJobRef): Promise<void> {
    const res = await this.call('POST', `/cancel/${encodeURIComponent(job.id)}`);
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
    throw classifyStatus(this.name, res, errorMessage(res));
  }

  /** Queue and worker counts of the endpoint (for the registry's health view). */
  async health(signal?: AbortSignal): Promise<RunpodHealth> {
    const res = await this.call('GET', '/health', signal);
    if (res.status < 200 || res.status >= 300) throw classifyStatus(this.name, res, errorMessage(res));
    const health = res.json<RunpodHealth>();
    if (!isRecord(health) || !isRecord(health.jobs) || !isRecord(health.workers)) {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, 'runpod health has no jobs/workers');
    }
    return health;
  }

  /**
   * Only what `start` returned is stored, so the backoff comes from the job's age: its submission time when the job
   * has one, else the queue and run times RunPod reports. 2 s for a fresh job, +1 s per 20 s of age, at most 5 s.
   */
  private pollAfter(job: RunpodJob, status: RunpodStatusResponse): number {
    const reported = (Number(status.delayTime) || 0) + (Number(status.executionTime) || 0);
    const sinceSubmit = typeof job.submittedAt === 'number' ? Date.now() - job.submittedAt : 0;
    const age = Math.max(reported, sinceSubmit, 0);
    return Math.min(RUNPOD_POLL_MAX_MS, RUNPOD_POLL_MIN_MS + Math.floor(age / 20));
  }

  private output(ctx: ProviderContext, status: RunpodStatusResponse): ProviderOutput {
    const times = { delay_time_ms: status.delayTime, execution_time_ms: status.executionTime };
    const out = status.output;
    if (isRecord(out) && Array.isArray(out.videos) && out.videos.length > 0 && out.videos.every(isVideo)) {
      const videos = out.videos.map((v) => ({ id: String(v.id), video_url: v.video_url, filename: v.filename }));
      const artifacts: ProviderArtifact[] = videos.map((v) => ({
        url: v.video_url,
        contentType: 'video/mp4',
        filename: v.filename,
      }));
      return { artifacts, data: { videos, ...times } };
    }
    if (isRecord(out) && typeof out.video_url === 'string' && out.video_url.length > 0) {
      const named = typeof out.filename === 'string' ? out.filename : outputFilenameOf(ctx);
      const filename = typeof named === 'string' && named.length > 0 ? named : 'output.mp4';
      return {
        artifacts: [{ url: out.video_url, contentType: 'video/mp4', filename }],
        data: { video_url: out.video_url, ...times },
      };
    }
    return { artifacts: [], data: { output: out, ...times } };
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    signal?: AbortSignal,
    body?: unknown,
  ): Promise<HttpResponse> {
    const { apiKey, endpointId, baseUrl } = this.config.runpod;
    if (!apiKey || !endpointId) {
      throw ProviderError.permanent(ProviderErrorCode.AuthFailed, 'runpod has no API key or endpoint id configured');
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${apiKey}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return providerRequest(this.name, {
      method,
      url: `${baseUrl}/${encodeURIComponent(endpointId)}${path}`,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal,
      maxBytes: MAX_RESPONSE_BYTES,
    });
  }
}
