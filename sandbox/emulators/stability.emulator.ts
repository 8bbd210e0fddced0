import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sharp } from '../../src/providers/lazy-sharp';
import {
  STABILITY_ASPECT_RATIOS,
  STABILITY_OUTPUT_FORMATS,
  STABILITY_PROMPT_MAX,
  STABILITY_SD3_MODELS,
  STABILITY_STYLE_PRESETS,
  StabilityAspectRatio,
  StabilityEndpoint,
  StabilityErrorBody,
  StabilityImageResponse,
} from '../../src/providers/adapters/stability/stability.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { sandboxPng } from './sandbox-png';

export interface StabilityEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  apiKey?: string;
  /**
   * The real per-key limit (150 requests / 10 s, then 429 for 60 s). Off unless given, so sandbox load tests are
   * shaped by the knobs alone.
   */
  rateWindow?: { max: number; windowMs: number; penaltyMs: number };
}

/** v2beta rejects bodies over 10 MiB with 413. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Legacy sd3 names the API still takes, re-routed to 3.5 at the same price. */
const SD3_ALIASES: Record<string, string> = {
  'sd3-large': 'sd3.5-large',
  'sd3-large-turbo': 'sd3.5-large-turbo',
  'sd3-medium': 'sd3.5-medium',
};
const MODERATION_MESSAGE =
  'Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.';

type Fields = Record<string, string | { filename: string; size: number; type: string }>;

class StabilityHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    readonly errors: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(`${errorName}: ${errors.join('; ')}`);
  }
}

function errorBody(name: string, errors: string[]): StabilityErrorBody {
  return { id: randomUUID().replace(/-/g, ''), name, errors };
}

function badRequest(errors: string[]): StabilityHttpError {
  return new StabilityHttpError(400, 'bad_request', errors);
}

/** Thumbnail dimensions (longest side 64) in the requested aspect ratio, so the shape is visibly right. */
function thumbnailSize(aspectRatio: StabilityAspectRatio): [number, number] {
  const [w, h] = aspectRatio.split(':').map(Number);
  return w >= h ? [64, Math.max(1, Math.round((64 * h) / w))] : [Math.max(1, Math.round((64 * w) / h)), 64];
}

async function parseMultipart(req: FastifyRequest): Promise<Fields> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType) || !Buffer.isBuffer(req.body)) {
    throw badRequest(['content-type: must be multipart/form-data']);
  }
  let form: FormData;
  try {
    form = await new Response(req.body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    throw badRequest(['body: is not valid multipart/form-data']);
  }
  const fields: Fields = {};
  for (const [key, value] of form.entries()) {
    fields[key] = typeof value === 'string' ? value : { filename: value.name, size: value.size, type: value.type };
  }
  return fields;
}

/** The field rules of the three generate endpoints, as the API words them ("field: problem"). */
function validateFields(endpoint: StabilityEndpoint, fields: Fields): string[] {
  const errors: string[] = [];
  const text = (key: string): string | undefined => {
    const value = fields[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      errors.push(`${key}: must be a text field`);
      return undefined;
    }
    return value;
  };
  const oneOf = (key: string, allowed: readonly string[]): void => {
    const value = text(key);
    if (value !== undefined && !allowed.includes(value)) errors.push(`${key}: must be one of ${allowed.join(', ')}`);
  };
  const numberIn = (key: string, min: number, max: number, integer = false): void => {
    const value = text(key);
    if (value === undefined) return;
    const num = Number(value);
    if (value.trim() === '' || !Number.isFinite(num) || (integer && !Number.isInteger(num)) || num < min || num > max) {
      errors.push(`${key}: must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`);
    }
  };

  const prompt = text('prompt');
  if (prompt === undefined || prompt.length === 0) errors.push('prompt: is required');
  else if (prompt.length > STABILITY_PROMPT_MAX) {
    errors.push(`prompt: must be at most ${STABILITY_PROMPT_MAX} characters`);
  }
  const negative = text('negative_prompt');
  if (negative !== undefined && negative.length > STABILITY_PROMPT_MAX) {
    errors.push(`negative_prompt: must be at most ${STABILITY_PROMPT_MAX} characters`);
  }
  oneOf('aspect_ratio', STABILITY_ASPECT_RATIOS);
  oneOf('style_preset', STABILITY_STYLE_PRESETS);
  oneOf('output_format', STABILITY_OUTPUT_FORMATS);
  numberIn('seed', 0, 4294967294, true);

  const hasImage = fields.image !== undefined;
  if (endpoint === 'sd3') {
    oneOf('model', [...STABILITY_SD3_MODELS, ...Object.keys(SD3_ALIASES)]);
    oneOf('mode', ['text-to-image', 'image-to-image']);
    numberIn('cfg_scale', 1, 10);
    if (fields.mode === 'image-to-image') {
      if (!hasImage) errors.push('image: is required with mode image-to-image');
      if (fields.strength === undefined) errors.push('strength: is required with mode image-to-image');
      if (fields.aspect_ratio !== undefined) errors.push('aspect_ratio: is only valid with mode text-to-image');
    }
  }
  if (endpoint === 'ultra' && hasImage && fields.strength === undefined) {
    errors.push('strength: is required when image is provided');
  }
  if (endpoint !== 'core') numberIn('strength', 0, 1);
  if (hasImage && typeof fields.image === 'string') errors.push('image: must be a file');
  return errors;
}

/**
 * Stability AI v2beta stable-image/generate emulator (sandbox mode and tests): the three text-to-image endpoints with
 * their multipart-only rule, field validation, bearer auth, moderation (a prompt containing "forbidden" → 403;
 * "blurred" → 200 with finish_reason CONTENT_FILTERED) and the shared knobs. Images are small PNGs whatever
 * output_format asks for. Returned unlistened.
 */
export function createStabilityEmulator(opts: StabilityEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const seeds = { rolls: 0 };
  const window = { start: 0, count: 0, blockedUntil: 0 };
  // close() must not wait on clients' keep-alive sockets (undici may hold one open that never sent a request).
  const app = Fastify({ logger: false, forceCloseConnections: true });

  // Every body is collected raw; the handler decides, so a JSON body gets the API's own 400, not Fastify's.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof StabilityHttpError) {
      return reply.code(err.status).headers(err.headers).send(errorBody(err.errorName, err.errors));
    }
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.code(413).send(errorBody('payload_too_large', ['body: exceeds 10 MiB']));
    if (status < 500) return reply.code(status).send(errorBody('bad_request', [err.message]));
    return reply.code(500).send(errorBody('internal_error', ['An unexpected server error has occurred.']));
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(errorBody('not_found', [`${req.method} ${req.url.split('?')[0]}: no such route`])),
  );

  const checkRateWindow = (): void => {
    const limit = opts.rateWindow;
    if (!limit) return;
    const now = Date.now();
    if (now < window.blockedUntil) throw tooMany(Math.ceil((window.blockedUntil - now) / 1000));
    if (now - window.start >= limit.windowMs) {
      window.start = now;
      window.count = 0;
    }
    if (++window.count > limit.max) {
      window.blockedUntil = now + limit.penaltyMs;
      throw tooMany(Math.ceil(limit.penaltyMs / 1000));
    }
  };

  const generate = async (endpoint: StabilityEndpoint, req: FastifyRequest, reply: FastifyReply) => {
    let fields: Fields | undefined;
    let parseError: unknown;
    try {
      fields = await parseMultipart(req);
    } catch (err) {
      parseError = err;
    }
    stats.count(`POST /v2beta/stable-image/generate/${endpoint}`, fields ?? {});

    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) return reply;

    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      throw new StabilityHttpError(401, 'unauthorized', ['authorization: missing or invalid API key']);
    }
    checkRateWindow();
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) throw tooMany(1);
    if (knobs.failureRate > 0 && roll(rolls, 0x85ebca6b) < knobs.failureRate) {
      throw new StabilityHttpError(500, 'internal_error', [
        'An unexpected server error has occurred, please try again later.',
      ]);
    }
    if (!fields) throw parseError;
    const errors = validateFields(endpoint, fields);
    if (errors.length > 0) throw badRequest(errors);

    const prompt = fields.prompt as string;
    if (/forbidden/i.test(prompt)) throw new StabilityHttpError(403, 'content_moderation', [MODERATION_MESSAGE]);

    const aspectRatio = (fields.aspect_ratio as StabilityAspectRatio | undefined) ?? '1:1';
    const requestedSeed = fields.seed === undefined ? 0 : Number(fields.seed);
    const seed = requestedSeed > 0 ? requestedSeed : 1 + Math.floor(roll(seeds, 0x27d4eb2f) * 4294967293);
    const finishReason = /blurred/i.test(prompt) ? 'CONTENT_FILTERED' : 'SUCCESS';
    const [width, height] = thumbnailSize(aspectRatio);
    const png = sandboxPng(`${prompt} ${aspectRatio}`, width, height);
    stats.submissions++;

    reply.header('x-request-id', randomUUID().replace(/-/g, ''));
    if (/application\/json/i.test(req.headers.accept ?? '')) {
      const body: StabilityImageResponse = { image: png.toString('base64'), finish_reason: finishReason, seed };
      return reply.code(200).type('application/json; type=image/png').send(body);
    }
    // accept image/* (the default): raw bytes, the metadata in headers.
    return reply
      .code(200)
      .type('image/png')
      .headers({ 'finish-reason': finishReason, seed: String(seed) })
      .send(png);
  };

  /** Auth, the rate window and the knobs, as for every v2beta call; true when the client left meanwhile. */
  const admit = async (req: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) return true;
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      throw new StabilityHttpError(401, 'unauthorized', ['authorization: missing or invalid API key']);
    }
    checkRateWindow();
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) throw tooMany(1);
    if (knobs.failureRate > 0 && roll(rolls, 0x85ebca6b) < knobs.failureRate) {
      throw new StabilityHttpError(500, 'internal_error', [
        'An unexpected server error has occurred, please try again later.',
      ]);
    }
    return false;
  };

  /** The image of an edit or upscale request, its form's text fields, or the API's 400 for what is missing. */
  const imageRequest = async (req: FastifyRequest, route: string) => {
    const contentType = req.headers['content-type'] ?? '';
    if (!/^multipart\/form-data/i.test(contentType) || !Buffer.isBuffer(req.body)) {
      stats.count(route, {});
      throw badRequest(['content-type: must be multipart/form-data']);
    }
    let form: globalThis.FormData;
    try {
      form = await new Response(req.body, { headers: { 'content-type': contentType } }).formData();
    } catch {
      stats.count(route, {});
      throw badRequest(['body: is not valid multipart/form-data']);
    }
    const fields: Fields = {};
    for (const [key, value] of form.entries()) {
      fields[key] = typeof value === 'string' ? value : { filename: value.name, size: value.size, type: value.type };
    }
    stats.count(route, fields);
    const file = form.get('image');
    return { fields, file: typeof file === 'string' || file === null ? undefined : file };
  };

  const readImage = async (file: File | undefined) => {
    if (!file) throw badRequest(['image: is required']);
    const data = Buffer.from(await file.arrayBuffer());
    const meta = await sharp(data)
      .metadata()
      .catch(() => undefined);
    if (!meta?.width || !meta.height || !['png', 'jpeg', 'webp'].includes(meta.format ?? '')) {
      throw badRequest(['image: must be a jpeg, png or webp image']);
    }
    return { data, width: meta.width, height: meta.height };
  };

  const sendImage = (req: FastifyRequest, reply: FastifyReply, image: Buffer, format: string, seed = 0) => {
    stats.submissions++;
    reply.header('x-request-id', randomUUID().replace(/-/g, ''));
    if (/application\/json/i.test(req.headers.accept ?? '')) {
      const body: StabilityImageResponse = { image: image.toString('base64'), finish_reason: 'SUCCESS', seed };
      return reply.code(200).type(`application/json; type=image/${format}`).send(body);
    }
    return reply
      .code(200)
      .type(`image/${format}`)
      .headers({ 'finish-reason': 'SUCCESS', seed: String(seed) })
      .send(image);
  };

  const outputFormatOf = (fields: Fields): 'png' | 'jpeg' | 'webp' => {
    const format = fields.output_format ?? 'png';
    if (typeof format !== 'string' || !(STABILITY_OUTPUT_FORMATS as readonly string[]).includes(format)) {
      throw badRequest([`output_format: must be one of ${STABILITY_OUTPUT_FORMATS.join(', ')}`]);
    }
    return format as 'png' | 'jpeg' | 'webp';
  };

  // Fast upscale: ×4 of an image of 32 to 1536 px a side and at most 1,048,576 px in all.
  app.post('/v2beta/stable-image/upscale/fast', async (req, reply) => {
    const { fields, file } = await imageRequest(req, 'POST /v2beta/stable-image/upscale/fast');
    if (await admit(req, reply)) return reply;
    const format = outputFormatOf(fields);
    const image = await readImage(file);
    const { width, height } = image;
    if (width < 32 || height < 32 || width > 1536 || height > 1536 || width * height > 1_048_576) {
      throw badRequest([
        `image: dimensions must be between 32 and 1536 px a side and at most 1048576 pixels in all (got ${width}x${height})`,
      ]);
    }
    const out = await sharp(image.data)
      .resize(width * 4, height * 4, { kernel: 'lanczos3' })
      .toFormat(format)
      .toBuffer();
    return sendImage(req, reply, out, format);
  });

  // Search and recolor: what `select_prompt` names, recoloured as `prompt` says (the emulator tints the whole image).
  app.post('/v2beta/stable-image/edit/search-and-recolor', async (req, reply) => {
    const { fields, file } = await imageRequest(req, 'POST /v2beta/stable-image/edit/search-and-recolor');
    if (await admit(req, reply)) return reply;
    const errors: string[] = [];
    for (const key of ['prompt', 'select_prompt']) {
      const value = fields[key];
      if (typeof value !== 'string' || value.length === 0) errors.push(`${key}: is required`);
      else if (value.length > STABILITY_PROMPT_MAX)
        errors.push(`${key}: must be at most ${STABILITY_PROMPT_MAX} characters`);
    }
    if (fields.grow_mask !== undefined) {
      const grow = Number(fields.grow_mask);
      if (!Number.isInteger(grow) || grow < 0 || grow > 20)
        errors.push('grow_mask: must be an integer between 0 and 20');
    }
    if (errors.length > 0) throw badRequest(errors);
    const format = outputFormatOf(fields);
    const image = await readImage(file);
    const prompt = fields.prompt as string;
    if (/forbidden/i.test(`${prompt} ${fields.select_prompt as string}`)) {
      throw new StabilityHttpError(403, 'content_moderation', [MODERATION_MESSAGE]);
    }
    const tint = await sharp(sandboxPng(prompt, 1, 1))
      .raw()
      .toBuffer();
    const out = await sharp(image.data).tint({ r: tint[0], g: tint[1], b: tint[2] }).toFormat(format).toBuffer();
    return sendImage(req, reply, out, format, 1 + Math.floor(roll(seeds, 0x27d4eb2f) * 4294967293));
  });

  for (const endpoint of ['core', 'ultra', 'sd3'] as const) {
    app.post(`/v2beta/stable-image/generate/${endpoint}`, (req, reply) => generate(endpoint, req, reply));
  }
  return app;
}

function tooMany(retryAfterSeconds: number): StabilityHttpError {
  return new StabilityHttpError(
    429,
    'rate_limit_exceeded',
    ['You have exceeded the rate limit of 150 requests within a 10 second period.'],
    { 'retry-after': String(retryAfterSeconds) },
  );
}
