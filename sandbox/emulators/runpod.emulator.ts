import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '../../src/config/app-config';
import { MediaUrlGuard } from '../../src/security/url-guard';
import { TaskType } from '../../src/tasks/task.enums';
import { FfmpegProvider } from '../../src/providers/adapters/ffmpeg/ffmpeg.provider';
import {
  RUNPOD_DEFAULT_EXECUTION_TIMEOUT_MS,
  RUNPOD_MAX_EXECUTION_TIMEOUT_MS,
  RUNPOD_MIN_EXECUTION_TIMEOUT_MS,
  RunpodHealth,
  RunpodJobStatus,
  RunpodOperation,
  RunpodStatusResponse,
  RunpodVideo,
  RunpodWorkerOutput,
} from '../../src/providers/adapters/runpod/runpod.types';
import { MediaProvider, providerContext, ProviderError, ProviderOutput } from '../../src/providers/provider.port';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { SANDBOX_MP4 } from './sandbox-mp4';

/** What the worker behind the endpoint does with one job; rejects with a ProviderError when the input is bad. */
export type RunpodWorker = (
  operation: RunpodOperation,
  input: Record<string, unknown>,
  signal: AbortSignal,
) => Promise<ProviderOutput>;

/**
 * How sandbox RunPod jobs run: `ffmpeg` runs our own ffmpeg code (the local provider's), so jobs make real videos
 * from real inputs; `simulated` answers a canned MP4 after knobs.asyncSteps polls and knobs.clipMs per clip, for
 * tests with made-up URLs or that time the queue.
 */
export type RunpodExecution = 'ffmpeg' | 'simulated';

/**
 * The worker the sandbox endpoint runs in `ffmpeg` execution: the platform's FfmpegProvider, built without Nest, so
 * a sandbox job and a local job make the same video from the same input.
 */
export function ffmpegRunpodWorker(settings: {
  ffmpegPath: string;
  ffprobePath: string;
  allowPrivateAddresses: boolean;
}): RunpodWorker {
  const config = AppConfig.fromEnv({ FFMPEG_PATH: settings.ffmpegPath, FFPROBE_PATH: settings.ffprobePath });
  const provider: MediaProvider = new FfmpegProvider(config, new MediaUrlGuard(settings.allowPrivateAddresses));
  return async (operation, input, signal) => {
    const type = operation as TaskType;
    const outcome = await provider.start(
      providerContext({ type, input }, { taskId: 'runpod-sandbox', signal, reportProgress: () => {} }),
    );
    if (outcome.kind !== 'completed') throw new Error('the ffmpeg worker returned no output');
    // The emulator serves clips from memory (within its budget): read back, then the provider's folder is freed.
    const { release, ...output } = outcome.output;
    try {
      const artifacts = await Promise.all(
        output.artifacts.map(async ({ file, ...artifact }) =>
          file ? { ...artifact, data: await readFile(file) } : artifact,
        ),
      );
      return { ...output, artifacts };
    } finally {
      await release?.();
    }
  };
}

export interface RunpodEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  apiKey?: string;
  /** The one endpoint this emulator serves; other ids are 404. */
  endpointId?: string;
  /** GPU workers: at most this many jobs are IN_PROGRESS at once, the rest wait IN_QUEUE. */
  workers?: number;
  /** Default `simulated`; `ffmpeg` needs `worker`. */
  execution?: RunpodExecution;
  /** Runs each job in `ffmpeg` execution (see ffmpegRunpodWorker). */
  worker?: RunpodWorker;
  /** ffmpeg execution: the most clip bytes kept in memory at once (default 256 MiB). */
  outputBudgetBytes?: number;
}

type Outcome = 'complete' | 'fail' | 'stuck';

interface EmulatedJob {
  id: string;
  input: Record<string, unknown>;
  status: RunpodJobStatus;
  outcome: Outcome;
  executionTimeoutMs: number;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Status polls answered while IN_PROGRESS. */
  polls: number;
  /** The clips made; their URLs are built per answer, from the host the client called. */
  result?: { videos: { id: string; filename: string }[]; message?: string };
  /** ffmpeg execution: the bytes of each clip, served at /outputs/{job}/{n}.mp4 until the job is pruned. */
  files?: Buffer[];
  /** ffmpeg execution: stops the run (cancel, execution timeout, shutdown). */
  abort?: AbortController;
  timeout?: NodeJS.Timeout;
  error?: string;
  /** The /run body's `webhook`: called when the job ends (not when cancelled), with the status body. */
  webhook?: string;
  /** Where the client reached the emulator (for the clip URLs of the webhook's body). */
  base: string;
}

const FINAL: readonly RunpodJobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];
/** RunPod keeps /run results 30 min after the end, then /status answers 404. */
const RESULT_TTL_MS = 30 * 60_000;
const OUTPUT_BUDGET_BYTES = 256 * 1024 * 1024;
const WEBHOOK_RETRY_MS = 10_000;
/** /run takes up to 10 MB. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const OPERATIONS = ['img2vid', 'caption', 'addaudio'];

class RunpodHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * RunPod Serverless job API emulator (sandbox mode and tests) for one endpoint running our media worker: /run,
 * /status, /cancel and /health under /{endpointId}. It behaves like an endpoint with `workers` GPU workers: a job
 * waits IN_QUEUE until a worker is free, then is IN_PROGRESS while it runs (see RunpodExecution) and ends COMPLETED
 * with clip URLs the emulator serves, or FAILED with the worker's reason. Jobs past their policy.executionTimeout end
 * TIMED_OUT. Accepts the key as a bearer token or bare. `stats.inFlight` counts IN_PROGRESS jobs (so tests can see
 * the worker cap), `stats.outstanding` the jobs not yet final, `stats.submissions` accepted /run calls. Returned
 * unlistened.
 */
export function createRunpodEmulator(opts: RunpodEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const endpointId = opts.endpointId ?? 'sandbox';
  const workers = Math.max(1, opts.workers ?? 3);
  const execution = opts.execution ?? 'simulated';
  const worker = opts.worker;
  if (execution === 'ffmpeg' && !worker) throw new Error('runpod emulator: ffmpeg execution needs a worker');
  let closed = false;
  const rolls = { rolls: 0 };
  const fates = { rolls: 0 };
  const jobs = new Map<string, EmulatedJob>();
  const queue: EmulatedJob[] = [];
  let running = 0;
  const app = Fastify({ logger: false, bodyLimit: MAX_BODY_BYTES, forceCloseConnections: true });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof RunpodHttpError) return reply.code(err.status).headers(err.headers).send({ error: err.message });
    const status = err.statusCode ?? 500;
    return reply.code(status).send({ error: status < 500 ? err.message : 'Internal server error' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: `${req.method} ${req.url.split('?')[0]}: not found` }),
  );

  // Latency on every answer; endpoint, auth and rate limit on the API (clip URLs stand for pre-signed storage URLs).
  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route) stats.count(`${req.method} ${route}`, req.method === 'POST' ? (req.body ?? {}) : undefined);
    if (await clientLeftDuringLatency(reply, knobs.latencyMs))
      throw new RunpodHttpError(499, 'client closed the request');
    if ((req.params as { endpointId?: string }).endpointId !== endpointId) {
      throw new RunpodHttpError(404, 'endpoint not found');
    }
    if (route === '/:endpointId/outputs/:jobId/:file') return;
    const auth = req.headers.authorization;
    if (auth !== `Bearer ${apiKey}` && auth !== apiKey) throw new RunpodHttpError(401, 'Unauthorized');
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) {
      throw new RunpodHttpError(429, 'Too many requests', { 'retry-after': '1' });
    }
  });

  /** Free workers take queued jobs, oldest first. */
  const schedule = (): void => {
    while (running < workers && queue.length > 0) {
      const job = queue.shift()!;
      if (job.status !== 'IN_QUEUE') continue; // cancelled while waiting
      job.status = 'IN_PROGRESS';
      job.startedAt = Date.now();
      running++;
      // jobStarted() would count a second submission: track the IN_PROGRESS gauge by hand.
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      if (execution === 'ffmpeg' && job.outcome === 'complete' && !inputProblem(job)) run(job);
      else if (execution === 'simulated' && job.webhook) {
        // A job with a webhook is not polled along: it runs its simulated time and ends by itself.
        job.timeout = setTimeout(() => endSimulated(job), Math.max(0, knobs.clipMs) * clips(job));
        job.timeout.unref();
      }
    }
  };

  /** The one way a job ends: frees its worker, stops its run, and counts it, once whatever calls it. */
  const finish = (job: EmulatedJob, status: RunpodJobStatus, error?: string): void => {
    if (FINAL.includes(job.status)) return;
    const wasRunning = job.status === 'IN_PROGRESS';
    job.status = status;
    job.error = error;
    job.endedAt = Date.now();
    clearTimeout(job.timeout);
    job.abort?.abort();
    job.abort = undefined;
    stats.outstanding = Math.max(0, stats.outstanding - 1);
    if (wasRunning) {
      running--;
      stats.jobEnded();
    }
    if (job.webhook && status !== 'CANCELLED') callBack(job);
    schedule();
  };

  /** RunPod POSTs the job's status body to its webhook when it ends (a non-200 is retried twice, 10 s apart). */
  const callBack = (job: EmulatedJob, attempt = 1): void => {
    if (closed) return;
    stats.count('POST webhook');
    fetch(job.webhook!, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(view(job, job.base)),
      signal: AbortSignal.timeout(5000),
    })
      .then((res) => {
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}`);
      })
      .catch(() => {
        if (attempt < 3) setTimeout(() => callBack(job, attempt + 1), WEBHOOK_RETRY_MS).unref();
      });
  };

  /** What the handler refuses before any work (an unknown operation is refused apart, at once). */
  function inputProblem(job: EmulatedJob): string | undefined {
    if (!OPERATIONS.includes(String(job.input.operation))) return 'unknown operation';
    const images = job.input.images;
    if (job.input.operation === 'img2vid' && (!Array.isArray(images) || images.length === 0)) {
      return 'images: must be a non-empty array';
    }
    return undefined;
  }

  const imageIds = (job: EmulatedJob): string[] =>
    (job.input.images as unknown[]).map((img, n) => {
      const raw = isRecord(img) ? img.id : undefined;
      return typeof raw === 'string' || typeof raw === 'number' ? String(raw) : String(n);
    });

  const clips = (job: EmulatedJob): number =>
    job.input.operation === 'img2vid' && Array.isArray(job.input.images) ? job.input.images.length : 1;

  /** ffmpeg execution: runs the job in the background; it stays IN_PROGRESS until the run ends. */
  function run(job: EmulatedJob): void {
    const controller = new AbortController();
    job.abort = controller;
    // Nobody may poll a running job: its execution timeout must stop the run anyway.
    job.timeout = setTimeout(() => finish(job, 'TIMED_OUT'), job.executionTimeoutMs);
    job.timeout.unref();
    worker!(job.input.operation as RunpodOperation, job.input, controller.signal).then(
      (output) => {
        if (closed || controller.signal.aborted) return;
        const files = output.artifacts.map((a) => a.data);
        if (files.length === 0 || files.some((f) => !f)) {
          return finish(job, 'FAILED', 'the worker made no video');
        }
        const ids = job.input.operation === 'img2vid' ? imageIds(job) : [];
        job.files = files as Buffer[];
        keepWithinBudget(job);
        job.result = {
          videos: output.artifacts.map((a, n) => {
            const id = ids[n] ?? 'output';
            return { id, filename: a.filename ?? `${id}.mp4` };
          }),
          message: `${files.length} video(s) made with ffmpeg (sandbox)`,
        };
        finish(job, 'COMPLETED');
      },
      (err: unknown) => {
        if (closed || controller.signal.aborted) return;
        const message = err instanceof Error ? err.message : String(err);
        finish(job, 'FAILED', err instanceof ProviderError ? `${err.code}: ${message}` : message);
      },
    );
  }

  /** Simulated execution: the canned clips of a job that ran its course. */
  const simulatedResult = (job: EmulatedJob): NonNullable<EmulatedJob['result']> => {
    if (job.input.operation === 'img2vid') {
      return { videos: imageIds(job).map((id) => ({ id, filename: `${id}.mp4` })), message: 'sandbox' };
    }
    const name = job.input.output_filename;
    return { videos: [{ id: 'output', filename: typeof name === 'string' && name ? name : 'output.mp4' }] };
  };

  /** Simulated execution: the end of a job's decided path, whether a poll or its timer gets there. */
  const endSimulated = (job: EmulatedJob): void => {
    if (job.status !== 'IN_PROGRESS' || job.outcome === 'stuck') return;
    if (job.outcome === 'fail') return finish(job, 'FAILED', 'Sandbox failure');
    const problem = inputProblem(job);
    if (problem) return finish(job, 'FAILED', problem);
    job.result = simulatedResult(job);
    finish(job, 'COMPLETED');
  };

  /** One status poll moves an IN_PROGRESS job one step along its decided path. */
  const advance = (job: EmulatedJob): void => {
    if (job.status !== 'IN_PROGRESS') return;
    if (Date.now() - job.startedAt! > job.executionTimeoutMs) return finish(job, 'TIMED_OUT');
    job.polls++;
    // The handler rejects an operation it does not know at once.
    if (!OPERATIONS.includes(String(job.input.operation))) return finish(job, 'FAILED', 'unknown operation');
    if (execution === 'ffmpeg' && job.outcome === 'complete') {
      // The run ends the job; only an input the handler refuses before running ends here.
      const problem = inputProblem(job);
      return problem ? finish(job, 'FAILED', problem) : undefined;
    }
    if (job.outcome === 'stuck' || job.polls <= Math.max(0, knobs.asyncSteps)) return;
    if (job.outcome === 'complete' && !inputProblem(job)) {
      if (Date.now() - job.startedAt! < Math.max(0, knobs.clipMs) * clips(job)) return;
    }
    endSimulated(job);
  };

  /**
   * Clip bytes are kept for RunPod's result window, but within `outputBudgetBytes`: past it the oldest finished jobs'
   * clips go first (the platform copies a job's clips as soon as it sees it COMPLETED; a late download gets a 404).
   */
  const budget = opts.outputBudgetBytes ?? OUTPUT_BUDGET_BYTES;
  const kept: EmulatedJob[] = [];
  let keptBytes = 0;
  const bytesOf = (job: EmulatedJob): number => (job.files ?? []).reduce((sum, f) => sum + f.length, 0);
  const forget = (job: EmulatedJob): void => {
    keptBytes -= bytesOf(job);
    job.files = undefined;
  };
  const keepWithinBudget = (job: EmulatedJob): void => {
    kept.push(job);
    keptBytes += bytesOf(job);
    while (keptBytes > budget && kept.length > 1) forget(kept.shift()!);
  };

  const prune = (): void => {
    const now = Date.now();
    for (const [id, job] of jobs) {
      if (job.endedAt === undefined || now - job.endedAt <= RESULT_TTL_MS) continue;
      jobs.delete(id);
      forget(job);
    }
    for (let i = kept.length - 1; i >= 0; i--) if (!jobs.has(kept[i].id)) kept.splice(i, 1);
  };

  const view = (job: EmulatedJob, base: string): RunpodStatusResponse => {
    const now = Date.now();
    const body: RunpodStatusResponse = {
      id: job.id,
      status: job.status,
      delayTime: (job.startedAt ?? job.endedAt ?? now) - job.submittedAt,
      executionTime: job.startedAt === undefined ? 0 : (job.endedAt ?? now) - job.startedAt,
    };
    if (job.result) {
      const videos: RunpodVideo[] = job.result.videos.map((v, n) => ({
        ...v,
        video_url: `${base}/${endpointId}/outputs/${job.id}/${n}.mp4`,
      }));
      const output: RunpodWorkerOutput = { videos };
      if (job.result.message !== undefined) output.message = job.result.message;
      body.output = output;
    }
    if (job.error) body.error = job.error;
    return body;
  };

  const jobOf = (id: string): EmulatedJob => {
    const job = jobs.get(id);
    if (!job) throw new RunpodHttpError(404, 'job not found');
    return job;
  };

  app.post('/:endpointId/run', async (req) => {
    const body = req.body;
    if (!isRecord(body) || !isRecord(body.input)) throw new RunpodHttpError(400, 'input: must be a JSON object');
    let executionTimeoutMs = RUNPOD_DEFAULT_EXECUTION_TIMEOUT_MS;
    if (body.policy !== undefined) {
      if (!isRecord(body.policy)) throw new RunpodHttpError(400, 'policy: must be a JSON object');
      const timeout = body.policy.executionTimeout;
      if (timeout !== undefined) {
        if (
          !Number.isInteger(timeout) ||
          (timeout as number) < RUNPOD_MIN_EXECUTION_TIMEOUT_MS ||
          (timeout as number) > RUNPOD_MAX_EXECUTION_TIMEOUT_MS
        ) {
          const range = `${RUNPOD_MIN_EXECUTION_TIMEOUT_MS} to ${RUNPOD_MAX_EXECUTION_TIMEOUT_MS} ms`;
          throw new RunpodHttpError(400, `policy.executionTimeout: must be an integer from ${range}`);
        }
        executionTimeoutMs = timeout as number;
      }
    }
    let outcome: Outcome = 'complete';
    if (knobs.failureRate > 0 && roll(fates, 0x85ebca6b) < knobs.failureRate) outcome = 'fail';
    else if (knobs.stuckRate > 0 && roll(fates, 0x27d4eb2f) < knobs.stuckRate) outcome = 'stuck';
    prune();
    const job: EmulatedJob = {
      id: randomUUID(),
      input: body.input,
      status: 'IN_QUEUE',
      outcome,
      executionTimeoutMs,
      submittedAt: Date.now(),
      polls: 0,
      webhook: typeof body.webhook === 'string' && /^https?:\/\//.test(body.webhook) ? body.webhook : undefined,
      base: `${req.protocol}://${req.host}`,
    };
    jobs.set(job.id, job);
    queue.push(job);
    stats.submissions++;
    stats.outstanding++;
    stats.maxOutstanding = Math.max(stats.maxOutstanding, stats.outstanding);
    schedule();
    // RunPod always answers IN_QUEUE, even when a worker picks the job up at once.
    return { id: job.id, status: 'IN_QUEUE' };
  });

  app.get<{ Params: { endpointId: string; id: string } }>('/:endpointId/status/:id', async (req) => {
    const job = jobOf(req.params.id);
    schedule();
    advance(job);
    return view(job, `${req.protocol}://${req.host}`);
  });

  app.post<{ Params: { endpointId: string; id: string } }>('/:endpointId/cancel/:id', async (req) => {
    const job = jobOf(req.params.id);
    finish(job, 'CANCELLED');
    return { id: job.id, status: job.status };
  });

  app.get('/:endpointId/health', async (): Promise<RunpodHealth> => {
    const count = (...statuses: RunpodJobStatus[]) =>
      [...jobs.values()].filter((j) => statuses.includes(j.status)).length;
    return {
      jobs: {
        completed: count('COMPLETED'),
        failed: count('FAILED', 'TIMED_OUT'),
        inProgress: count('IN_PROGRESS'),
        inQueue: count('IN_QUEUE'),
        retried: 0,
      },
      workers: { idle: workers - running, running },
    };
  });

  app.get<{ Params: { endpointId: string; jobId: string; file: string } }>(
    '/:endpointId/outputs/:jobId/:file',
    async (req, reply) => {
      if (!/^\d{1,4}\.mp4$/.test(req.params.file)) throw new RunpodHttpError(404, 'not found');
      if (execution === 'simulated') return reply.type('video/mp4').send(SANDBOX_MP4);
      const file = jobs.get(req.params.jobId)?.files?.[parseInt(req.params.file, 10)];
      if (!file) throw new RunpodHttpError(404, 'not found');
      return reply.type('video/mp4').send(file);
    },
  );

  // Runs still going when the emulator stops are killed, not left to finish into a closed map.
  app.addHook('onClose', async () => {
    closed = true;
    for (const job of jobs.values()) {
      clearTimeout(job.timeout);
      job.abort?.abort();
    }
  });

  return app;
}
