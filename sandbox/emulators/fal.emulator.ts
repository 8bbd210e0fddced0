import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  FAL_VIDEO_DURATIONS,
  FAL_VIDEO_RESOLUTIONS,
  falAppId,
  FalCancelAnswer,
  FalErrorBody,
  FalErrorDetail,
  FalImageResult,
  FalQueueStatus,
  FalQueueSubmitted,
  FalVideoResult,
  isImageToVideo,
} from '../../src/providers/adapters/fal/fal.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { SANDBOX_MP4 } from './sandbox-mp4';
import { sandboxPng } from './sandbox-png';

export interface FalEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  /** The one key accepted (default: the sandbox key). */
  apiKey?: string;
}

type Kind = 'video' | 'image';
type Outcome = 'succeed' | 'fail' | 'stuck' | 'cancelled';

interface EmulatedRequest {
  id: string;
  model: string;
  kind: Kind;
  input: Record<string, unknown>;
  status: 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED';
  /** Requests ahead of this one; goes down by one at each status answer. */
  ahead: number;
  /** Decided at submission so a request's fate does not depend on who polls it. */
  outcome: Outcome;
  /** What the model would refuse (checked by the runner, so reported by the result, as fal does). */
  problems: FalErrorDetail[];
  logs: { message: string; level: string; source: string; timestamp: string }[];
}

/** Finished requests kept for their results; the oldest go first beyond this. */
const MAX_REQUESTS = 10_000;
const ERROR_DOCS = 'https://docs.fal.ai/errors';

class FalHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: FalErrorBody | FalCancelAnswer,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof (body as FalErrorBody).detail === 'string' ? ((body as FalErrorBody).detail as string) : 'fal error');
  }
}

/** The emulator's model catalogue: fal's text- and image-to-video endpoints, and its image models. */
function kindOf(model: string): Kind | undefined {
  const parts = model.split('/');
  if (parts.includes('text-to-video') || isImageToVideo(model)) return 'video';
  if (parts.includes('text-to-image') || /^fal-ai\/(flux|flux-pro|flux-2|recraft|ideogram|imagen)/.test(model)) {
    return 'image';
  }
  return undefined;
}

function detail(field: string, msg: string, type: string, input?: unknown): FalErrorDetail {
  return { loc: ['body', field], msg, type, url: `${ERROR_DOCS}#${type}`, ...(input !== undefined && { input }) };
}

function isMediaUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (/^data:image\/[a-z0-9.+-]+;base64,/i.test(value)) return true;
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** What the model's own input validation (Pydantic) would say, in fal's error entries. */
function inputProblems(kind: Kind, model: string, input: Record<string, unknown>): FalErrorDetail[] {
  const problems: FalErrorDetail[] = [];
  if (input.prompt === undefined) problems.push(detail('prompt', 'Field required', 'missing'));
  else if (typeof input.prompt !== 'string' || input.prompt === '') {
    problems.push(detail('prompt', 'Input should be a non-empty string', 'string_type', input.prompt));
  }
  if (kind === 'video') {
    if (isImageToVideo(model)) {
      if (input.image_url === undefined) problems.push(detail('image_url', 'Field required', 'missing'));
      else if (!isMediaUrl(input.image_url)) {
        problems.push(detail('image_url', 'Input should be a valid URL', 'url_parsing', input.image_url));
      }
    }
    if (input.duration !== undefined && !(FAL_VIDEO_DURATIONS as readonly unknown[]).includes(input.duration)) {
      problems.push(detail('duration', 'Input should be 5 or 10', 'enum', input.duration));
    }
    if (input.resolution !== undefined && !(FAL_VIDEO_RESOLUTIONS as readonly unknown[]).includes(input.resolution)) {
      problems.push(detail('resolution', "Input should be '720p' or '1080p'", 'enum', input.resolution));
    }
  } else {
    const size = input.image_size;
    if (size !== undefined && typeof size !== 'string') {
      const { width, height } = (size ?? {}) as { width?: unknown; height?: unknown };
      const ok = (v: unknown) => Number.isInteger(v) && (v as number) >= 64 && (v as number) <= 14142;
      if (!ok(width) || !ok(height)) {
        problems.push(detail('image_size', 'width and height must be integers from 64 to 14142', 'value_error', size));
      }
    }
    const n = input.num_images;
    if (n !== undefined && !(Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 4)) {
      problems.push(detail('num_images', 'Input should be less than or equal to 4', 'less_than_equal', n));
    }
  }
  return problems;
}

/** Thumbnail dimensions (longest side 64) in the requested image's shape. */
function thumbnail(input: Record<string, unknown>): [number, number] {
  const size = input.image_size as { width?: number; height?: number } | undefined;
  const w = typeof size?.width === 'number' ? size.width : 1024;
  const h = typeof size?.height === 'number' ? size.height : 1024;
  return w >= h ? [64, Math.max(1, Math.round((64 * h) / w))] : [Math.max(1, Math.round((64 * w) / h)), 64];
}

/**
 * fal's queue (queue.fal.run) emulated for the sandbox and the tests: `POST /{model_id}` queues a request and
 * answers its status, result and cancel URLs on the model's app (owner/app, the endpoint path dropped, as fal
 * does); `GET …/requests/{id}/status` walks it through IN_QUEUE — its `queue_position` going down by one at each
 * answer, from knobs.asyncSteps to 0 — then IN_PROGRESS once, then COMPLETED (202 until then, 200 after);
 * `GET …/requests/{id}` answers the model's result (a real MP4 or PNGs served here) or its error; `PUT …/cancel`
 * drops it. `Authorization: Key …`, input checked by the "runner" (422 with a `detail` list from the result), a
 * prompt with "forbidden" refused as content_policy_violation, and the shared knobs (failureRate → the request
 * fails with a runner error, stuckRate → IN_PROGRESS forever, rateLimitRate → 429, latencyMs). Returned unlistened.
 */
export function createFalEmulator(opts: FalEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const fates = { rolls: 0 };
  const requests = new Map<string, EmulatedRequest>();
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof FalHttpError) return reply.code(err.status).headers(err.headers).send(err.body);
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // A body fal could not read: its request layer answers with a detail list too.
      return reply.code(422).send({ detail: [{ loc: ['body'], msg: err.message, type: 'json_invalid' }] });
    }
    return reply.code(500).send({ detail: 'Internal server error', error_type: 'internal_error' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ detail: `${req.method} ${req.url.split('?')[0]}: not found` } satisfies FalErrorBody),
  );

  const base = (req: FastifyRequest) => `${req.protocol}://${req.host}`;

  // The key first, before the body is read (output files are public CDN URLs, as fal's).
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (req.url.startsWith('/files/')) return;
    const match = /^Key\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (match && match[1] === apiKey) return;
    stats.count(`${req.method} ${routeName(req)}`);
    if (!match) throw new FalHttpError(401, { detail: 'Authentication is required to access this application.' });
    throw new FalHttpError(401, { detail: 'Invalid authentication credentials.' });
  });

  // Latency on every answer, then the rate limit on the API.
  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const files = req.url.startsWith('/files/');
    stats.count(
      `${req.method} ${files ? '/files/:file' : routeName(req)}`,
      req.method === 'POST' ? req.body : undefined,
    );
    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) {
      throw new FalHttpError(499, { detail: 'client closed the request', error_type: 'client_disconnected' });
    }
    if (!files && knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) {
      throw new FalHttpError(429, { detail: 'Too many requests: rate limit exceeded.' }, { 'retry-after': '1' });
    }
  });

  const prune = (): void => {
    if (requests.size <= MAX_REQUESTS) return;
    for (const [id, request] of requests) {
      if (requests.size <= MAX_REQUESTS) break;
      if (request.status === 'COMPLETED') requests.delete(id);
    }
  };

  const urls = (req: FastifyRequest, request: EmulatedRequest) => {
    const root = `${base(req)}/${falAppId(request.model)}/requests/${request.id}`;
    return { response_url: root, status_url: `${root}/status`, cancel_url: `${root}/cancel` };
  };

  const finish = (request: EmulatedRequest, outcome?: Outcome): void => {
    if (request.status === 'COMPLETED') return;
    request.status = 'COMPLETED';
    if (outcome) request.outcome = outcome;
    stats.jobEnded();
  };

  /** The request of an app's URL: another app's id is not found, as at fal. */
  const find = (params: { owner: string; app: string; id: string }): EmulatedRequest => {
    const request = requests.get(params.id);
    if (!request || falAppId(request.model) !== `${params.owner}/${params.app}`) {
      throw new FalHttpError(404, { detail: `Request ${params.id} not found` });
    }
    return request;
  };

  app.get<{ Params: { owner: string; app: string; id: string } }>(
    '/:owner/:app/requests/:id/status',
    async (req, reply) => {
      const request = find(req.params);
      // One answer moves a going request one step along its way.
      if (request.status === 'IN_QUEUE') {
        if (request.ahead > 0) request.ahead--;
        else {
          request.status = 'IN_PROGRESS';
          request.logs.push({
            message: 'Running the sandbox model',
            level: 'INFO',
            source: 'USER',
            timestamp: new Date().toISOString(),
          });
        }
      } else if (request.status === 'IN_PROGRESS' && request.outcome !== 'stuck') {
        finish(request);
      }
      const common = { request_id: request.id, ...urls(req, request) };
      const withLogs = (req.query as { logs?: string }).logs === '1';
      let view: FalQueueStatus;
      if (request.status === 'IN_QUEUE') view = { status: 'IN_QUEUE', queue_position: request.ahead, ...common };
      else if (request.status === 'IN_PROGRESS') {
        view = { status: 'IN_PROGRESS', logs: withLogs ? request.logs : null, ...common };
      } else {
        view = {
          status: 'COMPLETED',
          logs: withLogs ? request.logs : null,
          metrics: { inference_time: 0.01 },
          ...common,
        };
      }
      return reply.code(request.status === 'COMPLETED' ? 200 : 202).send(view);
    },
  );

  app.get<{ Params: { owner: string; app: string; id: string } }>('/:owner/:app/requests/:id', async (req) => {
    const request = find(req.params);
    if (request.status !== 'COMPLETED') throw new FalHttpError(400, { detail: 'Request is still in progress' });
    if (request.outcome === 'cancelled') {
      throw new FalHttpError(
        499,
        { detail: 'Request was cancelled', error_type: 'client_cancelled' },
        { 'x-fal-error-type': 'client_cancelled' },
      );
    }
    if (request.problems.length) throw new FalHttpError(422, { detail: request.problems });
    if (typeof request.input.prompt === 'string' && /\bforbidden\b/i.test(request.input.prompt)) {
      throw new FalHttpError(422, {
        detail: [
          detail(
            'prompt',
            'The content could not be processed because it contained material flagged by a content checker.',
            'content_policy_violation',
          ),
        ],
      });
    }
    if (request.outcome === 'fail') {
      throw new FalHttpError(
        500,
        { detail: 'Internal error while running the sandbox model', error_type: 'runner_server_error' },
        { 'x-fal-error-type': 'runner_server_error' },
      );
    }
    const seed = 42;
    if (request.kind === 'video') {
      const result: FalVideoResult = {
        video: {
          url: `${base(req)}/files/${request.id}.mp4`,
          content_type: 'video/mp4',
          file_name: `${request.id}.mp4`,
          file_size: SANDBOX_MP4.length,
        },
        seed,
      };
      return result;
    }
    const n = typeof request.input.num_images === 'number' ? request.input.num_images : 1;
    const [width, height] = thumbnail(request.input);
    const result: FalImageResult = {
      images: Array.from({ length: n }, (_, i) => ({
        url: `${base(req)}/files/${request.id}-${i}.png`,
        width,
        height,
        content_type: 'image/png',
      })),
      seed,
      prompt: String(request.input.prompt),
      has_nsfw_concepts: Array.from({ length: n }, () => false),
      timings: { inference: 0.01 },
    };
    return result;
  });

  app.put<{ Params: { owner: string; app: string; id: string } }>(
    '/:owner/:app/requests/:id/cancel',
    async (req, reply) => {
      const request = requests.get(req.params.id);
      if (!request || falAppId(request.model) !== `${req.params.owner}/${req.params.app}`) {
        return reply.code(404).send({ status: 'NOT_FOUND' } satisfies FalCancelAnswer);
      }
      if (request.status === 'COMPLETED') {
        return reply.code(400).send({ status: 'ALREADY_COMPLETED' } satisfies FalCancelAnswer);
      }
      finish(request, 'cancelled');
      return reply.code(202).send({ status: 'CANCELLATION_REQUESTED' } satisfies FalCancelAnswer);
    },
  );

  app.get<{ Params: { file: string } }>('/files/:file', async (req, reply) => {
    const match = /^([A-Za-z0-9-]{1,64}?)(?:-(\d+))?\.(mp4|png)$/.exec(req.params.file);
    if (!match) throw new FalHttpError(404, { detail: 'File not found' });
    if (match[3] === 'mp4') return reply.type('video/mp4').send(SANDBOX_MP4);
    const request = requests.get(match[1]);
    const [width, height] = request ? thumbnail(request.input) : [64, 64];
    const seed = request ? `${String(request.input.prompt)}|${match[2] ?? 0}` : req.params.file;
    return reply.type('image/png').send(sandboxPng(seed, width, height));
  });

  // Submit: any other POST names a model (owner/app/endpoint path).
  app.post('/*', async (req, reply) => {
    const model = (req.params as { '*': string })['*'].replace(/\/+$/, '');
    const kind = kindOf(model);
    if (!kind || model.split('/').length < 2 || model.includes('/requests/')) {
      throw new FalHttpError(404, { detail: `Application '${model}' not found` });
    }
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new FalHttpError(422, {
        detail: [{ loc: ['body'], msg: 'Input should be a valid dictionary', type: 'dict_type' }],
      });
    }
    const input = body as Record<string, unknown>;
    let outcome: Outcome = 'succeed';
    if (knobs.failureRate > 0 && roll(fates, 0x85ebca6b) < knobs.failureRate) outcome = 'fail';
    else if (knobs.stuckRate > 0 && roll(fates, 0x27d4eb2f) < knobs.stuckRate) outcome = 'stuck';
    const request: EmulatedRequest = {
      id: randomUUID(),
      model,
      kind,
      input,
      status: 'IN_QUEUE',
      ahead: Math.max(0, knobs.asyncSteps),
      outcome,
      problems: inputProblems(kind, model, input),
      logs: [],
    };
    prune();
    requests.set(request.id, request);
    stats.jobStarted();
    const answer: FalQueueSubmitted = {
      request_id: request.id,
      status: 'IN_QUEUE',
      queue_position: request.ahead,
      ...urls(req, request),
    };
    return reply.code(200).send(answer);
  });

  return app;
}

/** The route a request took, for the emulator's counts ("POST /{model}" for every submit). */
function routeName(req: FastifyRequest): string {
  const route = req.routeOptions.url ?? req.url.split('?')[0];
  return route === '/*' ? '/{model}' : route;
}
