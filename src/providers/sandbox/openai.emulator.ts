import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CreateImageRequest,
  ImageData,
  ImagesResponse,
  OpenAiErrorBody,
  TranscriptionJson,
  TranscriptionSegment,
  TranscriptionVerboseJson,
} from '../adapters/openai/openai.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';
import { sandboxPng } from './sandbox-png';

export interface OpenAiEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  /** The one bearer token accepted (default: the sandbox key). */
  apiKey?: string;
}

const MAX_BODY = 30 * 1024 * 1024;
const MAX_AUDIO = 25 * 1024 * 1024;
/** The emulator's (and the adapter's) guess of compressed speech: 16 kB per second. */
const AUDIO_BYTES_PER_SECOND = 16_000;
/** Images served for response_format=url, oldest dropped first. */
const MAX_FILES = 200;

const IMAGE_MODELS = ['dall-e-2', 'dall-e-3', 'gpt-image-1'] as const;
type ImageModel = (typeof IMAGE_MODELS)[number];
const IMAGE_FIELDS = new Set([
  'prompt',
  'model',
  'n',
  'quality',
  'response_format',
  'output_format',
  'output_compression',
  'stream',
  'partial_images',
  'size',
  'moderation',
  'background',
  'style',
  'user',
]);
const GPT_IMAGE_ONLY = ['output_format', 'output_compression', 'background', 'moderation', 'stream', 'partial_images'];
const PROMPT_LIMIT: Record<ImageModel, number> = { 'dall-e-2': 1000, 'dall-e-3': 4000, 'gpt-image-1': 32000 };
const IMAGE_SIZES: Record<ImageModel, string[]> = {
  'dall-e-2': ['256x256', '512x512', '1024x1024'],
  'dall-e-3': ['1024x1024', '1792x1024', '1024x1792'],
  'gpt-image-1': ['1024x1024', '1536x1024', '1024x1536', 'auto'],
};
const IMAGE_QUALITIES: Record<ImageModel, string[]> = {
  'dall-e-2': ['standard', 'auto'],
  'dall-e-3': ['standard', 'hd', 'auto'],
  'gpt-image-1': ['low', 'medium', 'high', 'auto'],
};

const TRANSCRIPTION_FIELDS = new Set([
  'file',
  'model',
  'language',
  'prompt',
  'response_format',
  'temperature',
  'include',
  'timestamp_granularities',
  'stream',
  'chunking_strategy',
]);
const TRANSCRIPTION_MODELS = ['whisper-1', 'gpt-4o-transcribe', 'gpt-4o-mini-transcribe'];
const TRANSCRIPTION_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'];
const AUDIO_EXTENSIONS = ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'];
const LANGUAGE_NAMES: Record<string, string> = {
  en: 'english',
  pt: 'portuguese',
  es: 'spanish',
  fr: 'french',
  de: 'german',
  it: 'italian',
  nl: 'dutch',
  ja: 'japanese',
};

const SERVER_ERROR = 'The server had an error while processing your request.';
const CONTENT_POLICY =
  'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.';

interface Problem {
  status?: number;
  message: string;
  param?: string | null;
  code?: string | null;
  type?: string;
}

function errorBody(problem: Problem): OpenAiErrorBody {
  return {
    error: {
      message: problem.message,
      type: problem.type ?? 'invalid_request_error',
      param: problem.param ?? null,
      code: problem.code ?? null,
    },
  };
}

function fail(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status ?? 400).send(errorBody(problem));
}

function quoteList(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} and ${quoted[quoted.length - 1]}` : quoted.join('');
}

/** OpenAI shows the start and end of a wrong key, never all of it. */
function maskKey(key: string): string {
  return key.length > 10 ? `${key.slice(0, 3)}${'*'.repeat(Math.min(key.length - 7, 20))}${key.slice(-4)}` : '***';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The request's problem in OpenAI's words, or the normalised request. */
function checkImageRequest(body: unknown): Problem | { request: CreateImageRequest & { model: ImageModel } } {
  if (!isPlainObject(body)) {
    return { message: 'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.' };
  }
  for (const key of Object.keys(body)) {
    if (!IMAGE_FIELDS.has(key)) return { message: `Unrecognized request argument supplied: ${key}` };
  }
  const { prompt } = body;
  if (prompt === undefined || prompt === null) {
    return { message: "Missing required parameter: 'prompt'.", param: 'prompt', code: 'missing_required_parameter' };
  }
  if (typeof prompt !== 'string') {
    return {
      message: `Invalid type for 'prompt': expected a string, but got ${typeof prompt} instead.`,
      param: 'prompt',
      code: 'invalid_type',
    };
  }
  const model = (body.model ?? 'dall-e-2') as ImageModel;
  if (!IMAGE_MODELS.includes(model)) {
    return {
      message: `Invalid value: '${String(body.model)}'. Supported values are: ${quoteList(IMAGE_MODELS)}.`,
      param: 'model',
      code: 'invalid_value',
    };
  }
  if (prompt.length > PROMPT_LIMIT[model]) {
    return {
      message: `Invalid 'prompt': string too long. Expected a string with maximum length ${PROMPT_LIMIT[model]}, but got a string with length ${prompt.length} instead.`,
      param: 'prompt',
      code: 'string_above_max_length',
    };
  }
  const n = body.n ?? 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10) {
    return {
      message: `Invalid 'n': expected an integer between 1 and 10, but got ${JSON.stringify(n)} instead.`,
      param: 'n',
      code: 'invalid_value',
    };
  }
  if (model === 'dall-e-3' && n !== 1) {
    return { message: 'You must provide n=1 for this model.', param: 'n', code: 'invalid_value' };
  }
  const size = (body.size ?? (model === 'gpt-image-1' ? 'auto' : '1024x1024')) as string;
  if (!IMAGE_SIZES[model].includes(size)) {
    return {
      message: `Invalid value: '${size}'. Supported values are: ${quoteList(IMAGE_SIZES[model])}.`,
      param: 'size',
      code: 'invalid_value',
    };
  }
  const quality = (body.quality ?? 'auto') as string;
  if (!IMAGE_QUALITIES[model].includes(quality)) {
    return {
      message: `Invalid value: '${quality}'. Supported values are: ${quoteList(IMAGE_QUALITIES[model])}.`,
      param: 'quality',
      code: 'invalid_value',
    };
  }
  if (body.style != null) {
    if (model !== 'dall-e-3') {
      return { message: `'style' is not supported with ${model}.`, param: 'style', code: 'unsupported_parameter' };
    }
    if (body.style !== 'vivid' && body.style !== 'natural') {
      return {
        message: `Invalid value: ${JSON.stringify(body.style)}. Supported values are: 'vivid' and 'natural'.`,
        param: 'style',
        code: 'invalid_value',
      };
    }
  }
  if (body.response_format != null) {
    if (model === 'gpt-image-1') {
      return { message: "Unknown parameter: 'response_format'.", param: 'response_format', code: 'unknown_parameter' };
    }
    if (body.response_format !== 'url' && body.response_format !== 'b64_json') {
      return {
        message: `Invalid value: ${JSON.stringify(body.response_format)}. Supported values are: 'url' and 'b64_json'.`,
        param: 'response_format',
        code: 'invalid_value',
      };
    }
  }
  for (const key of GPT_IMAGE_ONLY) {
    if (body[key] == null) continue;
    if (model !== 'gpt-image-1') {
      return { message: `'${key}' is not supported with ${model}.`, param: key, code: 'unsupported_parameter' };
    }
  }
  // The sandbox draws PNGs and does not stream.
  if (body.output_format != null && body.output_format !== 'png') {
    return { message: 'The sandbox emulator makes png images only.', param: 'output_format', code: 'invalid_value' };
  }
  if (body.stream === true) {
    return { message: 'The sandbox emulator does not stream images.', param: 'stream', code: 'invalid_value' };
  }
  if (/\bforbidden\b/i.test(prompt)) return { message: CONTENT_POLICY, code: 'content_policy_violation' };
  return {
    request: {
      prompt,
      model,
      n,
      size: size as CreateImageRequest['size'],
      quality: quality as CreateImageRequest['quality'],
      style: body.style as CreateImageRequest['style'],
      response_format: body.response_format as CreateImageRequest['response_format'],
    },
  };
}

/** Multipart fields as an object (file parts as {filename, size, type}; repeated `x[]` keys as arrays). */
interface ParsedForm {
  fields: Record<string, unknown>;
  file?: File;
}

async function parseMultipart(body: Buffer, contentType: string): Promise<ParsedForm> {
  const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  const fields: Record<string, unknown> = {};
  let file: File | undefined;
  for (const [key, value] of form.entries()) {
    const entry = typeof value === 'string' ? value : { filename: value.name, size: value.size, type: value.type };
    if (typeof value !== 'string' && key === 'file') file = value;
    if (key.endsWith('[]')) fields[key] = [...((fields[key] as unknown[]) ?? []), entry];
    else fields[key] = entry;
  }
  return { fields, file };
}

function srtTime(seconds: number, separator: ',' | '.'): string {
  const ms = Math.round(seconds * 1000);
  const pad = (v: number, width = 2) => String(v).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

/**
 * An in-process stand-in for OpenAI's Images and Audio transcription endpoints (sandbox mode and tests): the same
 * paths, headers, bodies and status codes, made-up content (hashed PNGs, template transcripts), and the shared
 * knobs for latency, 429s and 500s. Returned unlistened.
 */
export function createOpenAiEmulator(opts: OpenAiEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const files = new Map<string, Buffer>();
  // Close drops kept-alive and abandoned connections (a client that timed out may still hold one): a stand-in
  // should never hold up a test's or the app's shutdown.
  const app = Fastify({ logger: false, bodyLimit: MAX_BODY, forceCloseConnections: true });

  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-sandbox', 'true');
    reply.header('x-request-id', `req_${randomUUID().replace(/-/g, '')}`);
    reply.header('openai-version', '2020-10-01');
  });

  // No @fastify/multipart: keep the raw body and let Node's fetch parse it.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: MAX_BODY }, (_req, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) return fail(reply, { status, message: SERVER_ERROR, type: 'server_error' });
    const message =
      err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? 'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.'
        : err.message;
    return fail(reply, { status, message });
  });

  app.setNotFoundHandler((req, reply) =>
    fail(reply, { status: 404, message: `Invalid URL (${req.method} ${req.url})` }),
  );

  const authorize = async (req: FastifyRequest, reply: FastifyReply) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (match && match[1] === apiKey) return;
    stats.count(`${req.method} ${req.routeOptions.url}`);
    return fail(reply, {
      status: 401,
      message: match
        ? `Incorrect API key provided: ${maskKey(match[1])}. You can find your API key at https://platform.openai.com/account/api-keys.`
        : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      code: match ? 'invalid_api_key' : null,
    });
  };

  /** Latency, then the 429 and 500 knobs; true when the request was answered here (or its client left meanwhile). */
  const applyKnobs = async (reply: FastifyReply): Promise<boolean> => {
    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) return true;
    if (roll(rolls) < knobs.rateLimitRate) {
      reply.header('retry-after', '1');
      fail(reply, {
        status: 429,
        message: 'Rate limit reached for requests per min (RPM) in the sandbox. Please try again in 1s.',
        type: 'requests',
        code: 'rate_limit_exceeded',
      });
      return true;
    }
    if (roll(rolls) < knobs.failureRate) {
      fail(reply, { status: 500, message: SERVER_ERROR, type: 'server_error' });
      return true;
    }
    return false;
  };

  /** In-flight accounting around one handled request, for concurrency assertions. */
  const track = async <T>(work: () => Promise<T>): Promise<T> => {
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      return await work();
    } finally {
      stats.jobEnded();
    }
  };

  app.post('/v1/images/generations', { onRequest: authorize }, (req, reply) =>
    track(async () => {
      stats.count('POST /v1/images/generations', req.body);
      if (await applyKnobs(reply)) return reply;
      const checked = checkImageRequest(req.body);
      if (!('request' in checked)) return fail(reply, checked);
      const { request } = checked;
      const format = request.model === 'gpt-image-1' ? 'b64_json' : (request.response_format ?? 'url');
      const data = Array.from({ length: request.n ?? 1 }, (_, i): ImageData => {
        const png = sandboxPng(`${request.model}|${request.size}|${request.prompt}|${i}`);
        const image: ImageData = {};
        if (format === 'url') {
          const id = randomUUID();
          files.set(id, png);
          if (files.size > MAX_FILES) files.delete(files.keys().next().value!);
          image.url = `${req.protocol}://${req.headers.host}/v1/files/${id}.png`;
        } else {
          image.b64_json = png.toString('base64');
        }
        if (request.model === 'dall-e-3') {
          image.revised_prompt = `${request.prompt} (sandbox rendering, ${request.style ?? 'vivid'} style)`;
        }
        return image;
      });
      const response: ImagesResponse = { created: Math.floor(Date.now() / 1000), data };
      if (request.model === 'gpt-image-1') {
        const textTokens = Math.ceil(request.prompt.length / 4);
        const outputTokens = 1056 * data.length;
        Object.assign(response, {
          background: 'opaque',
          output_format: 'png',
          size: request.size === 'auto' ? '1024x1024' : request.size,
          quality: request.quality === 'auto' ? 'medium' : request.quality,
          usage: {
            total_tokens: textTokens + outputTokens,
            input_tokens: textTokens,
            output_tokens: outputTokens,
            input_tokens_details: { text_tokens: textTokens, image_tokens: 0 },
          },
        });
      }
      stats.submissions++;
      return reply.code(200).send(response);
    }),
  );

  // Stands in for the signed blob URLs of response_format=url: no auth, like them.
  app.get<{ Params: { id: string } }>('/v1/files/:id.png', async (req, reply) => {
    stats.count('GET /v1/files/:id.png');
    const png = files.get(req.params.id);
    if (!png) return fail(reply, { status: 404, message: 'The file does not exist or has expired.' });
    return reply.type('image/png').send(png);
  });

  app.post('/v1/audio/transcriptions', { onRequest: authorize }, (req, reply) =>
    track(async () => {
      const contentType = req.headers['content-type'] ?? '';
      if (!Buffer.isBuffer(req.body) || !contentType.startsWith('multipart/form-data')) {
        stats.count('POST /v1/audio/transcriptions', req.body ?? null);
        return fail(reply, { message: "Invalid Content-Type header (expected 'multipart/form-data')." });
      }
      let form: ParsedForm;
      try {
        form = await parseMultipart(req.body, contentType);
      } catch {
        stats.count('POST /v1/audio/transcriptions', null);
        return fail(reply, { message: 'Could not parse multipart form.' });
      }
      stats.count('POST /v1/audio/transcriptions', form.fields);
      if (await applyKnobs(reply)) return reply;
      return transcribe(form, reply);
    }),
  );

  function transcribe({ fields, file }: ParsedForm, reply: FastifyReply): FastifyReply {
    for (const key of Object.keys(fields)) {
      if (!TRANSCRIPTION_FIELDS.has(key.replace(/\[\]$/, ''))) {
        return fail(reply, { message: `Unrecognized request argument supplied: ${key}` });
      }
    }
    if (!file) {
      return fail(reply, {
        message: "Missing required parameter: 'file'.",
        param: 'file',
        code: 'missing_required_parameter',
      });
    }
    const model = fields.model;
    if (typeof model !== 'string') {
      return fail(reply, {
        message: "Missing required parameter: 'model'.",
        param: 'model',
        code: 'missing_required_parameter',
      });
    }
    if (!TRANSCRIPTION_MODELS.includes(model)) {
      return fail(reply, {
        message: `Invalid value: '${model}'. Supported values are: ${quoteList(TRANSCRIPTION_MODELS)}.`,
        param: 'model',
        code: 'invalid_value',
      });
    }
    const format = typeof fields.response_format === 'string' ? fields.response_format : 'json';
    if (!TRANSCRIPTION_FORMATS.includes(format)) {
      return fail(reply, {
        message: `Invalid value: '${format}'. Supported values are: ${quoteList(TRANSCRIPTION_FORMATS)}.`,
        param: 'response_format',
        code: 'invalid_value',
      });
    }
    if (model !== 'whisper-1' && format !== 'json') {
      return fail(reply, {
        message: `response_format '${format}' is not compatible with model '${model}'. Use 'json' instead.`,
        param: 'response_format',
        code: 'unsupported_value',
      });
    }
    if (fields.language !== undefined && (typeof fields.language !== 'string' || !/^[a-z]{2}$/.test(fields.language))) {
      return fail(reply, {
        message: `Invalid language ${JSON.stringify(fields.language)}. Language parameter must be specified in ISO-639-1 format.`,
        param: 'language',
        code: 'invalid_language_format',
      });
    }
    const language = fields.language;
    const extension = file.name.includes('.') ? file.name.split('.').pop()!.toLowerCase() : '';
    if (!AUDIO_EXTENSIONS.includes(extension)) {
      return fail(reply, { message: `Invalid file format. Supported formats: ['${AUDIO_EXTENSIONS.join("', '")}']` });
    }
    if (file.size > MAX_AUDIO) {
      return fail(reply, {
        status: 413,
        message: `Maximum content size limit (${MAX_AUDIO}) exceeded (${file.size} bytes read)`,
      });
    }
    if (file.size === 0) {
      return fail(reply, {
        message: 'Audio file is too short. Minimum audio length is 0.1 seconds.',
        param: 'file',
        code: 'audio_too_short',
      });
    }

    const duration = Math.max(0.1, Math.round((file.size / AUDIO_BYTES_PER_SECOND) * 100) / 100);
    const sentences = [
      `This is a sandbox transcript of ${file.name}, ${file.size} bytes of audio.`,
      'No one listened to it; the emulator made these words up.',
    ];
    const text = sentences.join(' ');
    const cues = [
      { start: 0, end: Math.round((duration / 2) * 100) / 100, text: sentences[0] },
      { start: Math.round((duration / 2) * 100) / 100, end: duration, text: sentences[1] },
    ];
    stats.submissions++;
    switch (format) {
      case 'json': {
        const audioTokens = Math.ceil(duration * 10);
        const outputTokens = Math.ceil(text.length / 4);
        const body: TranscriptionJson = {
          text,
          usage:
            model === 'whisper-1'
              ? { type: 'duration', seconds: Math.ceil(duration) }
              : {
                  type: 'tokens',
                  input_tokens: audioTokens,
                  input_token_details: { text_tokens: 0, audio_tokens: audioTokens },
                  output_tokens: outputTokens,
                  total_tokens: audioTokens + outputTokens,
                },
        };
        return reply.code(200).send(body);
      }
      case 'verbose_json': {
        const segments = cues.map((cue, id): TranscriptionSegment => ({
          id,
          seek: 0,
          start: cue.start,
          end: cue.end,
          text: ` ${cue.text}`,
          tokens: [50364 + id],
          temperature: 0,
          avg_logprob: -0.25,
          compression_ratio: 1.2,
          no_speech_prob: 0.01,
        }));
        const body: TranscriptionVerboseJson = {
          task: 'transcribe',
          language: LANGUAGE_NAMES[language ?? 'en'] ?? language ?? 'english',
          duration,
          text,
          segments,
          usage: { type: 'duration', seconds: Math.ceil(duration) },
        };
        return reply.code(200).send(body);
      }
      case 'srt': {
        const srt = cues
          .map((cue, i) => `${i + 1}\n${srtTime(cue.start, ',')} --> ${srtTime(cue.end, ',')}\n${cue.text}\n`)
          .join('\n');
        return reply.code(200).type('text/plain; charset=utf-8').send(`${srt}\n`);
      }
      case 'vtt': {
        const vtt = cues
          .map((cue) => `${srtTime(cue.start, '.')} --> ${srtTime(cue.end, '.')}\n${cue.text}\n`)
          .join('\n');
        return reply.code(200).type('text/plain; charset=utf-8').send(`WEBVTT\n\n${vtt}\n`);
      }
      default:
        return reply.code(200).type('text/plain; charset=utf-8').send(`${text}\n`);
    }
  }

  return app;
}
