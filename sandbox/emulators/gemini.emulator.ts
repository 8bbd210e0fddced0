import { createHash, randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sharp } from '../../src/providers/lazy-sharp';
import { GeminiErrorBody, GeminiPart, GenerateContentResponse } from '../../src/providers/adapters/gemini/gemini.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { sandboxPng } from './sandbox-png';

export interface GeminiEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  apiKey?: string;
}

/** The request size Gemini takes with inline data (beyond it: 400). */
const MAX_REQUEST_BYTES = 20 * 1024 * 1024;
const INPUT_MIME_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/heic', 'image/heif'];
/** Tokens an output image of up to 1024×1024 counts (what Google bills). */
const IMAGE_TOKENS = 1290;

type Status =
  'INVALID_ARGUMENT' | 'PERMISSION_DENIED' | 'NOT_FOUND' | 'RESOURCE_EXHAUSTED' | 'INTERNAL' | 'UNAVAILABLE';

class GeminiHttpError extends Error {
  constructor(
    readonly code: number,
    readonly status: Status,
    message: string,
    readonly details: GeminiErrorBody['error']['details'] = undefined,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new GeminiHttpError(400, 'INVALID_ARGUMENT', message);

interface ParsedRequest {
  texts: string[];
  images: { mimeType: string; data: Buffer }[];
  modalities: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request's text and images, or the API's own 400 wording for what is wrong with it. */
function parseRequest(body: unknown): ParsedRequest {
  if (!isObject(body)) throw invalid('Invalid JSON payload received. Expected an object.');
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) {
    throw invalid('* GenerateContentRequest.contents: contents is not specified\n');
  }
  const texts: string[] = [];
  const images: ParsedRequest['images'] = [];
  for (const [i, content] of contents.entries()) {
    if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      throw invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.\n`);
    }
    for (const [j, part] of (content.parts as unknown[]).entries()) {
      const where = `GenerateContentRequest.contents[${i}].parts[${j}]`;
      if (isObject(part) && typeof part.text === 'string') texts.push(part.text);
      else if (isObject(part) && isObject(part.inlineData ?? part.inline_data)) {
        const inline = (part.inlineData ?? part.inline_data) as Record<string, unknown>;
        const mimeType = inline.mimeType ?? inline.mime_type;
        if (typeof mimeType !== 'string' || !INPUT_MIME_TYPES.includes(mimeType)) {
          throw invalid(`* ${where}.inline_data.mime_type: Unsupported MIME type: ${String(mimeType)}\n`);
        }
        if (typeof inline.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(inline.data)) {
          throw invalid(
            `Invalid value at '${where.replace('GenerateContentRequest.', '')}.inline_data.data' (TYPE_BYTES), Base64 decoding failed`,
          );
        }
        images.push({ mimeType, data: Buffer.from(inline.data, 'base64') });
      } else throw invalid(`* ${where}.data: required oneof field 'data' must have one initialized field\n`);
    }
  }
  const config = isObject(body.generationConfig) ? body.generationConfig : {};
  const modalities = Array.isArray(config.responseModalities) ? config.responseModalities.map(String) : ['TEXT'];
  return { texts, images, modalities };
}

/** A colour from the prompt, so different prompts tint differently. */
function tintOf(text: string): { r: number; g: number; b: number } {
  const h = createHash('sha256').update(text).digest();
  return { r: h[0], g: h[1], b: h[2] };
}

/**
 * What the emulated model draws: an edit is a tinted copy of the first image at most 1024 px a side (its aspect
 * kept, as the real model does); a generation is a 1024×1024 picture drawn from the prompt. Real PNGs either way.
 */
async function drawImage(prompt: string, images: ParsedRequest['images']): Promise<Buffer> {
  if (images.length > 0) {
    return sharp(images[0].data)
      .resize(1024, 1024, { fit: 'inside', withoutEnlargement: false })
      .tint(tintOf(prompt))
      .png()
      .toBuffer();
  }
  return sharp(sandboxPng(prompt, 64, 64))
    .resize(1024, 1024)
    .png()
    .toBuffer();
}

/**
 * Google's Gemini API emulator (sandbox mode and tests): `POST /v1beta/models/{model}:generateContent` with the
 * `x-goog-api-key` header (or `?key=`), JSON bodies of text and inline images, answers with an image part, Google's
 * error bodies and statuses. Prompt words pick the refusals: "forbidden" → a blocked prompt
 * (`promptFeedback.blockReason`), "unsafe" → a candidate stopped for IMAGE_SAFETY, "text only" → a text answer
 * without an image. The shared knobs give latency, 429 RESOURCE_EXHAUSTED and 503 UNAVAILABLE. Returned unlistened.
 */
export function createGeminiEmulator(opts: GeminiEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const app = Fastify({ logger: false, bodyLimit: MAX_REQUEST_BYTES + 1024 * 1024, forceCloseConnections: true });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  const fail = (reply: FastifyReply, err: GeminiHttpError) => {
    const body: GeminiErrorBody = {
      error: { code: err.code, message: err.message, status: err.status, ...(err.details && { details: err.details }) },
    };
    return reply.code(err.code).type('application/json; charset=UTF-8').send(body);
  };

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof GeminiHttpError) return fail(reply, err);
    if (err.statusCode === 413) {
      return fail(reply, invalid(`Request payload size exceeds the limit: ${MAX_REQUEST_BYTES} bytes.`));
    }
    if (err.statusCode && err.statusCode < 500) return fail(reply, invalid(err.message));
    return fail(reply, new GeminiHttpError(500, 'INTERNAL', 'An internal error has occurred.'));
  });

  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type('text/html; charset=UTF-8')
      .send(`<!DOCTYPE html><title>Error 404 (Not Found)</title>${req.url}`),
  );

  const authorize = (req: FastifyRequest) => {
    const key = req.headers['x-goog-api-key'] ?? (req.query as Record<string, string | undefined>).key;
    if (key === undefined) {
      throw new GeminiHttpError(
        403,
        'PERMISSION_DENIED',
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (key !== apiKey) {
      throw new GeminiHttpError(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' },
      ]);
    }
  };

  app.post('/v1beta/models/*', async (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    const [model, method] = path.split(':');
    const parsed = (() => {
      try {
        return parseRequest(req.body);
      } catch {
        return undefined;
      }
    })();
    stats.count(`POST /v1beta/models/{model}:${method ?? ''}`, {
      model,
      texts: parsed?.texts ?? [],
      images: (parsed?.images ?? []).map((image) => ({ mimeType: image.mimeType, size: image.data.length })),
      modalities: parsed?.modalities ?? [],
    });
    if (method !== 'generateContent') {
      throw new GeminiHttpError(404, 'NOT_FOUND', `Method not found: ${method ?? ''}`);
    }
    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) return reply;
    authorize(req);
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) {
      reply.header('retry-after', '1');
      throw new GeminiHttpError(
        429,
        'RESOURCE_EXHAUSTED',
        'You exceeded your current quota, please check your plan and billing details.',
        [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' }],
      );
    }
    if (knobs.failureRate > 0 && roll(rolls, 0x85ebca6b) < knobs.failureRate) {
      throw new GeminiHttpError(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
    }
    if (!/image/.test(model)) {
      throw new GeminiHttpError(
        404,
        'NOT_FOUND',
        `models/${model} is not found for API version v1beta, or is not supported for generateContent.`,
      );
    }
    const request = parseRequest(req.body);
    for (const image of request.images) {
      try {
        await sharp(image.data).metadata();
      } catch {
        throw invalid(
          'Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
        );
      }
    }
    const prompt = request.texts.join('\n');
    const promptTokens = Math.ceil(prompt.length / 4) + request.images.length * 258;
    const usage = (candidates: number) => ({
      promptTokenCount: promptTokens,
      candidatesTokenCount: candidates,
      totalTokenCount: promptTokens + candidates,
    });
    const answer: GenerateContentResponse = { modelVersion: model, responseId: randomUUID().replace(/-/g, '') };

    if (/\bforbidden\b/i.test(prompt)) {
      answer.promptFeedback = { blockReason: 'PROHIBITED_CONTENT' };
      answer.usageMetadata = usage(0);
      return reply.send(answer);
    }
    if (/\bunsafe\b/i.test(prompt)) {
      answer.candidates = [{ finishReason: 'IMAGE_SAFETY', index: 0 }];
      answer.usageMetadata = usage(0);
      return reply.send(answer);
    }
    const parts: GeminiPart[] = [];
    if (!request.modalities.includes('IMAGE') || /\btext only\b/i.test(prompt)) {
      parts.push({ text: 'I can describe the image, but I will not draw it. (sandbox answer)' });
    } else {
      const png = await drawImage(prompt, request.images);
      parts.push({ text: 'Here is the image. (sandbox rendering)' });
      parts.push({ inlineData: { mimeType: 'image/png', data: png.toString('base64') } });
      stats.submissions++;
    }
    answer.candidates = [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }];
    answer.usageMetadata = usage(parts.length > 1 ? IMAGE_TOKENS : 20);
    return reply.send(answer);
  });

  return app;
}
