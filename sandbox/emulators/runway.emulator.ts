import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  isRunwayVideoModel,
  RUNWAY_API_VERSION,
  RUNWAY_IMAGE_MODEL,
  RUNWAY_IMAGE_RATIOS,
  RUNWAY_PROMPT_MAX,
  RUNWAY_VIDEO_MODEL_SPECS,
  RUNWAY_VIDEO_MODELS,
  RunwayErrorBody,
  RunwayTask,
  RunwayTaskStatus,
} from '../../src/providers/adapters/runway/runway.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { SANDBOX_MP4 } from './sandbox-mp4';
import { sandboxPng } from './sandbox-png';

export interface RunwayEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  apiKey?: string;
}

type Outcome = 'succeed' | 'fail' | 'safety' | 'stuck';

interface EmulatedTask {
  id: string;
  kind: 'video' | 'image';
  /** Seed and shape of the sandbox image. */
  promptText: string;
  ratio?: string;
  createdAt: string;
  status: RunwayTaskStatus;
  /** GET /v1/tasks/{id} answers so far while the task was still going. */
  polls: number;
  progress?: number;
  /** Decided at submission so a task's fate does not depend on who polls it. */
  outcome: Outcome;
  failure?: string;
  failureCode?: string;
}

const FINAL: readonly RunwayTaskStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
/** Finished tasks kept for GET; the oldest go first beyond this, so a long sandbox run does not grow forever. */
const MAX_TASKS = 10_000;

class RunwayHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Runway wants HTTPS URLs or data URIs; the sandbox's own files are served over http on loopback, so those pass too.
 */
function isAcceptedImage(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (/^data:image\/[a-z0-9.+-]+;base64,/i.test(value)) return true;
  try {
    const url = new URL(value);
    if (url.protocol === 'https:') return true;
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  } catch {
    return false;
  }
}

function checkPrompt(value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || (required && value.length === 0)) return 'promptText: must be a non-empty string';
  if (value.length > RUNWAY_PROMPT_MAX) return `promptText: must be at most ${RUNWAY_PROMPT_MAX} characters`;
  return undefined;
}

function checkSeed(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 4294967295
    ? undefined
    : 'seed: must be an integer from 0 to 4294967295';
}

/**
 * First problem with a text_to_video or image_to_video body, worded as Runway does ("field: reason"), by the model's
 * own rules (ratios per endpoint, durations, whether it needs a prompt or takes `audio`).
 */
function videoProblem(endpoint: 'text' | 'image', body: Record<string, unknown>): string | undefined {
  const served = RUNWAY_VIDEO_MODELS.filter((m) =>
    endpoint === 'text' ? RUNWAY_VIDEO_MODEL_SPECS[m].textRatios.length > 0 : true,
  );
  if (!isRunwayVideoModel(body.model) || !served.includes(body.model))
    return `model: must be one of ${served.join(', ')}`;
  const spec = RUNWAY_VIDEO_MODEL_SPECS[body.model];
  if (endpoint === 'image') {
    const image = body.promptImage;
    const images = Array.isArray(image) ? (image as { uri?: unknown; position?: unknown }[]) : undefined;
    if (images) {
      if (
        images.length === 0 ||
        images.some((i) => !isAcceptedImage(i?.uri) || !['first', 'last'].includes(String(i?.position)))
      ) {
        return 'promptImage: each image needs an HTTPS uri or data URI and a position of first or last';
      }
    } else if (!isAcceptedImage(image)) {
      return 'promptImage: must be an HTTPS URL or a data URI';
    }
  }
  // gen4.5 wants a prompt on both endpoints; the others only when there is no image to start from.
  const promptProblem = checkPrompt(body.promptText, endpoint === 'text' || body.model === 'gen4.5');
  if (promptProblem) return promptProblem;
  const ratios = endpoint === 'text' ? spec.textRatios : spec.imageRatios;
  if (!ratios.includes(body.ratio as string)) return `ratio: must be one of ${ratios.join(', ')}`;
  const { duration } = body;
  if (duration === undefined) {
    if (spec.durationRequired) return 'duration: is required';
  } else if (!spec.durations.includes(duration as number)) {
    const allowed = spec.durations;
    return allowed.length > 3
      ? `duration: must be an integer from ${allowed[0]} to ${allowed[allowed.length - 1]}`
      : `duration: must be one of ${allowed.join(', ')}`;
  }
  if (body.audio !== undefined) {
    if (!spec.audio) return `audio: is not supported by ${body.model}`;
    if (typeof body.audio !== 'boolean') return 'audio: must be a boolean';
  }
  if (body.seed !== undefined && body.model.startsWith('veo')) return `seed: is not supported by ${body.model}`;
  return checkSeed(body.seed);
}

function textToImageProblem(body: Record<string, unknown>): string | undefined {
  if (body.model !== RUNWAY_IMAGE_MODEL) return `model: must be ${RUNWAY_IMAGE_MODEL}`;
  const promptProblem = checkPrompt(body.promptText, true);
  if (promptProblem) return promptProblem;
  if (!(RUNWAY_IMAGE_RATIOS as readonly unknown[]).includes(body.ratio)) {
    return `ratio: must be one of ${RUNWAY_IMAGE_RATIOS.join(', ')}`;
  }
  return checkSeed(body.seed);
}

/** Thumbnail dimensions (longest side 64) in the task's ratio, so the image's shape is visibly right. */
function thumbnailSize(ratio: string | undefined): [number, number] {
  const [w, h] = (ratio ?? '1:1').split(':').map(Number);
  if (!(w > 0 && h > 0)) return [64, 64];
  return w >= h ? [64, Math.max(1, Math.round((64 * h) / w))] : [Math.max(1, Math.round((64 * w) / h)), 64];
}

/**
 * RunwayML developer API emulator (sandbox mode and tests): text_to_video, image_to_video and text_to_image create
 * tasks that GET /v1/tasks/{id} walks through PENDING → RUNNING (knobs.asyncSteps answers) → SUCCEEDED, with output
 * URLs served by the emulator itself (a real MP4, or a PNG). Each video model's own ratios and durations, bearer auth, the exact X-Runway-Version, Runway's `{error}` 400s,
 * DELETE to cancel or delete, a prompt containing "forbidden" failing with SAFETY.INPUT.TEXT, and the shared knobs
 * (failureRate → FAILED task, stuckRate → RUNNING forever, rateLimitRate → 429, latencyMs). Returned unlistened.
 */
export function createRunwayEmulator(opts: RunwayEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const fates = { rolls: 0 };
  const tasks = new Map<string, EmulatedTask>();
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof RunwayHttpError) {
      return reply
        .code(err.status)
        .headers(err.headers)
        .send({ error: err.message } satisfies RunwayErrorBody);
    }
    const status = err.statusCode ?? 500;
    return reply.code(status).send({ error: status < 500 ? err.message : 'Internal server error' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: `${req.method} ${req.url.split('?')[0]}: not found` } satisfies RunwayErrorBody),
  );

  // Latency on every answer; auth, version and rate limit on the API (output URLs are pre-signed, like Runway's CDN).
  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route) stats.count(`${req.method} ${route}`, req.method === 'POST' ? (req.body ?? {}) : undefined);
    if (await clientLeftDuringLatency(reply, knobs.latencyMs))
      throw new RunwayHttpError(499, 'client closed the request');
    if (route === '/v1/outputs/:file') return;
    if (req.headers.authorization !== `Bearer ${apiKey}`) throw new RunwayHttpError(401, 'Invalid API key');
    if (req.headers['x-runway-version'] !== RUNWAY_API_VERSION) {
      throw new RunwayHttpError(400, `X-Runway-Version header: must be ${RUNWAY_API_VERSION}`);
    }
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) {
      throw new RunwayHttpError(429, 'Too many requests', { 'retry-after': '1' });
    }
  });

  const prune = (): void => {
    if (tasks.size <= MAX_TASKS) return;
    for (const [id, task] of tasks) {
      if (tasks.size <= MAX_TASKS) break;
      if (FINAL.includes(task.status)) tasks.delete(id);
    }
  };

  const submit = (kind: 'video' | 'image', body: Record<string, unknown>): { id: string } => {
    let outcome: Outcome = 'succeed';
    if (typeof body.promptText === 'string' && /forbidden/i.test(body.promptText)) outcome = 'safety';
    else if (knobs.failureRate > 0 && roll(fates, 0x85ebca6b) < knobs.failureRate) outcome = 'fail';
    else if (knobs.stuckRate > 0 && roll(fates, 0x27d4eb2f) < knobs.stuckRate) outcome = 'stuck';
    const task: EmulatedTask = {
      id: randomUUID(),
      kind,
      promptText: typeof body.promptText === 'string' ? body.promptText : '',
      ratio: typeof body.ratio === 'string' ? body.ratio : undefined,
      createdAt: new Date().toISOString(),
      status: 'PENDING',
      polls: 0,
      outcome,
    };
    prune();
    tasks.set(task.id, task);
    stats.jobStarted();
    return { id: task.id };
  };

  const bodyOf = (req: FastifyRequest): Record<string, unknown> => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new RunwayHttpError(400, 'body: must be a JSON object');
    }
    return req.body as Record<string, unknown>;
  };

  app.post('/v1/text_to_video', async (req) => {
    const body = bodyOf(req);
    const problem = videoProblem('text', body);
    if (problem) throw new RunwayHttpError(400, problem);
    return submit('video', body);
  });

  app.post('/v1/image_to_video', async (req) => {
    const body = bodyOf(req);
    const problem = videoProblem('image', body);
    if (problem) throw new RunwayHttpError(400, problem);
    return submit('video', body);
  });

  app.post('/v1/text_to_image', async (req) => {
    const body = bodyOf(req);
    const problem = textToImageProblem(body);
    if (problem) throw new RunwayHttpError(400, problem);
    return submit('image', body);
  });

  const finish = (task: EmulatedTask, status: RunwayTaskStatus, failure?: string, failureCode?: string): void => {
    task.status = status;
    task.progress = undefined;
    task.failure = failure;
    task.failureCode = failureCode;
    stats.jobEnded();
  };

  /** One poll moves a going task one step along its decided path. */
  const advance = (task: EmulatedTask): void => {
    if (FINAL.includes(task.status)) return;
    task.polls++;
    // Input moderation happens before generation: such a task fails on its first look.
    if (task.outcome === 'safety')
      return finish(task, 'FAILED', 'Your prompt was flagged by moderation', 'SAFETY.INPUT.TEXT');
    const steps = Math.max(0, knobs.asyncSteps);
    if (task.outcome === 'stuck' || task.polls <= steps) {
      if (task.polls === 1) {
        task.status = 'PENDING';
      } else {
        task.status = 'RUNNING';
        task.progress = Math.min(0.95, (task.polls - 1) / Math.max(1, steps));
      }
      return;
    }
    if (task.outcome === 'fail') return finish(task, 'FAILED', 'Sandbox failure', 'INTERNAL');
    finish(task, 'SUCCEEDED');
  };

  app.get<{ Params: { id: string } }>('/v1/tasks/:id', async (req) => {
    const task = tasks.get(req.params.id);
    if (!task) throw new RunwayHttpError(404, 'Task not found');
    advance(task);
    const view: RunwayTask = { id: task.id, status: task.status, createdAt: task.createdAt };
    if (task.status === 'RUNNING') view.progress = task.progress;
    if (task.status === 'FAILED') Object.assign(view, { failure: task.failure, failureCode: task.failureCode });
    if (task.status === 'SUCCEEDED') {
      view.output = [`${req.protocol}://${req.host}/v1/outputs/${task.id}.${task.kind === 'video' ? 'mp4' : 'png'}`];
    }
    return view;
  });

  // Cancels a going task; deletes a finished one (it cannot be fetched again).
  app.delete<{ Params: { id: string } }>('/v1/tasks/:id', async (req, reply) => {
    const task = tasks.get(req.params.id);
    if (!task) throw new RunwayHttpError(404, 'Task not found');
    if (FINAL.includes(task.status)) tasks.delete(task.id);
    else finish(task, 'CANCELLED');
    return reply.code(204).send();
  });

  app.get<{ Params: { file: string } }>('/v1/outputs/:file', async (req, reply) => {
    const match = /^([A-Za-z0-9-]{1,64})\.(mp4|png)$/.exec(req.params.file);
    if (!match) throw new RunwayHttpError(404, 'Not found');
    if (match[2] === 'mp4') return reply.type('video/mp4').send(SANDBOX_MP4);
    // The URL outlives the task record (deleted tasks): then the id alone seeds a square image.
    const task = tasks.get(match[1]);
    const [width, height] = thumbnailSize(task?.ratio);
    return reply
      .type('image/png')
      .send(sandboxPng(task ? `${task.promptText} ${task.ratio}` : match[1], width, height));
  });

  return app;
}
