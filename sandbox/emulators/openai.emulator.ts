import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sharp } from '../../src/providers/lazy-sharp';
import {
  ChatCompletion,
  CreateImageRequest,
  ImageData,
  ImagesResponse,
  OpenAiErrorBody,
  SubtitleTranslationAnswer,
  TranscriptionJson,
  TranscriptionSegment,
  TranscriptionVerboseJson,
} from '../../src/providers/adapters/openai/openai.types';
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
const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'];
const EDIT_FIELDS = new Set([
  'image',
  'image[]',
  'prompt',
  'mask',
  'model',
  'n',
  'size',
  'quality',
  'output_format',
  'output_compression',
  'background',
  'input_fidelity',
  'moderation',
  'response_format',
  'user',
]);
const EDIT_SIZES = ['1024x1024', '1536x1024', '1024x1536', 'auto'];
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

const CHAT_FIELDS = new Set([
  'model',
  'messages',
  'response_format',
  'temperature',
  'top_p',
  'n',
  'stop',
  'seed',
  'max_tokens',
  'max_completion_tokens',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'user',
  'store',
  'metadata',
  'reasoning_effort',
  'verbosity',
  'service_tier',
  'stream',
  'stream_options',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'prompt_cache_key',
  'safety_identifier',
]);
const CHAT_ROLES = ['system', 'assistant', 'user', 'function', 'tool', 'developer'];
/** Chat models the emulator answers as (any name of these families). */
const CHAT_MODEL = /^(gpt-[0-9][a-z0-9.-]*|o[0-9][a-z0-9-]*|chatgpt-[a-z0-9.-]+)$/;
/** Reasoning models take only the default temperature. */
const REASONING_MODEL = /^(gpt-5|o[0-9])/;
/** A few frequent words per language: the emulator's stand-in for a model telling a text's language. */
const LANGUAGE_WORDS: Record<string, string[]> = {
  en: ['the', 'and', 'is', 'are', 'of', 'to', 'you', 'this', 'we', 'with', 'hello', 'there'],
  pt: ['o', 'a', 'os', 'as', 'de', 'do', 'da', 'que', 'não', 'é', 'um', 'uma', 'você', 'olá', 'com'],
  es: ['el', 'la', 'los', 'las', 'de', 'que', 'y', 'es', 'un', 'una', 'hola', 'con', 'por'],
  fr: ['le', 'la', 'les', 'de', 'des', 'et', 'est', 'un', 'une', 'bonjour', 'vous', 'avec'],
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
  const tooLong = promptTooLong(prompt, PROMPT_LIMIT[model]);
  if (tooLong) return tooLong;
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
  if (body.output_format != null && !OUTPUT_FORMATS.includes(body.output_format as string)) {
    return {
      message: `Invalid value: ${JSON.stringify(body.output_format)}. Supported values are: ${quoteList(OUTPUT_FORMATS)}.`,
      param: 'output_format',
      code: 'invalid_value',
    };
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
      output_format: body.output_format as CreateImageRequest['output_format'],
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

/** The emulator's guess of a text's language from its frequent words (English when nothing stands out). */
function guessLanguage(text: string): string {
  const words = text.toLowerCase().match(/\p{L}+/gu) ?? [];
  let best = 'en';
  let bestHits = 0;
  for (const [language, list] of Object.entries(LANGUAGE_WORDS)) {
    const hits = words.filter((word) => list.includes(word)).length;
    if (hits > bestHits) [best, bestHits] = [language, hits];
  }
  return best;
}

/**
 * OpenAI's rule for strict JSON schemas: every object closes itself (`additionalProperties: false`) and requires
 * all of its properties. The path of the first object that breaks it, or undefined.
 */
function strictSchemaProblem(schema: unknown, path = '(root)'): string | undefined {
  if (!isPlainObject(schema)) return undefined;
  if (schema.type === 'object' || isPlainObject(schema.properties)) {
    if (schema.additionalProperties !== false) {
      return `In context=${path}, 'additionalProperties' is required to be supplied and to be false.`;
    }
    const properties = isPlainObject(schema.properties) ? Object.keys(schema.properties) : [];
    const required = Array.isArray(schema.required) ? schema.required : [];
    const missing = properties.find((key) => !required.includes(key));
    if (missing) {
      return `In context=${path}, 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
    }
    for (const key of properties) {
      const inner = strictSchemaProblem((schema.properties as Record<string, unknown>)[key], `${path}, '${key}'`);
      if (inner) return inner;
    }
  }
  if (schema.items !== undefined) return strictSchemaProblem(schema.items, `${path}, 'items'`);
  return undefined;
}

interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  responseFormat: string;
}

/** The chat request's problem in OpenAI's words, or what the emulator needs of it. */
function checkChatRequest(body: unknown): Problem | { request: ChatRequest } {
  if (!isPlainObject(body)) {
    return { message: 'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.' };
  }
  for (const key of Object.keys(body)) {
    if (!CHAT_FIELDS.has(key)) return { message: `Unrecognized request argument supplied: ${key}` };
  }
  if (body.model === undefined || body.model === null) return { message: 'you must provide a model parameter' };
  if (typeof body.model !== 'string' || !CHAT_MODEL.test(body.model)) {
    return {
      status: 404,
      message: `The model \`${JSON.stringify(body.model).replace(/^"|"$/g, '')}\` does not exist or you do not have access to it.`,
      code: 'model_not_found',
    };
  }
  if (body.messages === undefined) {
    return {
      message: "Missing required parameter: 'messages'.",
      param: 'messages',
      code: 'missing_required_parameter',
    };
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return {
      message:
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      param: 'messages',
      code: 'empty_array',
    };
  }
  const messages: ChatRequest['messages'] = [];
  for (const [i, message] of (body.messages as unknown[]).entries()) {
    if (!isPlainObject(message) || !CHAT_ROLES.includes(message.role as string)) {
      return {
        message: `Invalid value: '${String(isPlainObject(message) ? message.role : message)}'. Supported values are: ${quoteList(CHAT_ROLES)}.`,
        param: `messages[${i}].role`,
        code: 'invalid_value',
      };
    }
    if (typeof message.content !== 'string') {
      return {
        message: `Invalid type for 'messages[${i}].content': the sandbox emulator reads text content only.`,
        param: `messages[${i}].content`,
        code: 'invalid_type',
      };
    }
    messages.push({ role: message.role as string, content: message.content });
  }
  if (body.stream === true) {
    return { message: 'The sandbox emulator does not stream completions.', param: 'stream', code: 'invalid_value' };
  }
  if (body.n !== undefined && body.n !== 1) {
    return { message: 'The sandbox emulator makes one choice (n=1).', param: 'n', code: 'invalid_value' };
  }
  if (body.temperature !== undefined && body.temperature !== 1 && REASONING_MODEL.test(body.model)) {
    return {
      message: `Unsupported value: 'temperature' does not support ${JSON.stringify(body.temperature)} with this model. Only the default (1) value is supported.`,
      param: 'temperature',
      code: 'unsupported_value',
    };
  }
  const format = body.response_format ?? { type: 'text' };
  if (!isPlainObject(format) || !['text', 'json_object', 'json_schema'].includes(format.type as string)) {
    return {
      message: `Invalid value: ${JSON.stringify(isPlainObject(format) ? format.type : format)}. Supported values are: 'text', 'json_object' and 'json_schema'.`,
      param: 'response_format.type',
      code: 'invalid_value',
    };
  }
  if (format.type === 'json_schema') {
    const spec = format.json_schema;
    if (!isPlainObject(spec) || typeof spec.name !== 'string') {
      return {
        message: "Missing required parameter: 'response_format.json_schema.name'.",
        param: 'response_format.json_schema.name',
        code: 'missing_required_parameter',
      };
    }
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) {
      return {
        message: `Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
        param: 'response_format.json_schema.name',
        code: 'invalid_value',
      };
    }
    const problem = spec.strict === true ? strictSchemaProblem(spec.schema) : undefined;
    if (problem) {
      return {
        message: `Invalid schema for response_format '${spec.name}': ${problem}`,
        param: 'response_format',
        code: 'invalid_json_schema',
      };
    }
  }
  if (format.type === 'json_object' && !messages.some((m) => /json/i.test(m.content))) {
    return {
      message: "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
      param: 'messages',
    };
  }
  return { request: { model: body.model, messages, responseFormat: format.type as string } };
}

/**
 * What the emulated model answers: a subtitle translation request (the translator's JSON) gets each cue marked with
 * its target language, "[pt] Hello there.", so a test sees which text was translated into what; text already in
 * the target language comes back as it was. A cue with "forbidden" in it makes the model refuse.
 */
function chatAnswer(request: ChatRequest): { content: string | null; refusal: string | null } {
  const question = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  let asked: { target_language?: unknown; source_language?: unknown; cues?: unknown } | undefined;
  try {
    asked = JSON.parse(question) as typeof asked;
  } catch {
    asked = undefined;
  }
  const cues = asked?.cues;
  if (
    typeof asked?.target_language === 'string' &&
    Array.isArray(cues) &&
    cues.every((cue) => isPlainObject(cue) && typeof cue.id === 'number' && typeof cue.text === 'string')
  ) {
    const list = cues as { id: number; text: string }[];
    if (list.some((cue) => /\bforbidden\b/i.test(cue.text))) {
      return { content: null, refusal: "I'm sorry, but I can't help with translating that." };
    }
    const target = asked.target_language;
    const source =
      typeof asked.source_language === 'string' && asked.source_language
        ? asked.source_language
        : guessLanguage(list.map((cue) => cue.text).join(' '));
    const same = source.split('-')[0].toLowerCase() === target.split('-')[0].toLowerCase();
    const answer: SubtitleTranslationAnswer = {
      source_language: source,
      cues: list.map((cue) => ({ id: cue.id, text: same ? cue.text : `[${target}] ${cue.text}` })),
    };
    return { content: JSON.stringify(answer), refusal: null };
  }
  if (request.responseFormat !== 'text') return { content: '{}', refusal: null };
  return { content: 'This is a sandbox completion: no model read your messages.', refusal: null };
}

/** Multipart fields as an object (file parts as {filename, size, type}; repeated `x[]` keys as arrays). */
function formSummary(form: globalThis.FormData): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of form.entries()) {
    const entry = typeof value === 'string' ? value : { filename: value.name, size: value.size, type: value.type };
    if (key.endsWith('[]')) fields[key] = [...((fields[key] as unknown[]) ?? []), entry];
    else fields[key] = entry;
  }
  return fields;
}

/**
 * POST /images/edits: OpenAI's checks of the form (gpt-image-1: up to 16 png, webp or jpg images under 50 MB;
 * dall-e-2: one square png), then the edit, a copy of the first image tinted by the prompt at the asked size, in the
 * asked format. "forbidden" in the prompt is refused as gpt-image-1 refuses (moderation_blocked).
 */
async function editImage(form: globalThis.FormData): Promise<Problem | { response: ImagesResponse }> {
  for (const key of new Set(form.keys())) {
    if (!EDIT_FIELDS.has(key)) return { message: `Unrecognized request argument supplied: ${key}` };
  }
  const files = [...form.getAll('image[]'), ...form.getAll('image')].filter((v): v is File => typeof v !== 'string');
  if (files.length === 0) {
    return { message: "Missing required parameter: 'image'.", param: 'image', code: 'missing_required_parameter' };
  }
  const prompt = form.get('prompt');
  if (typeof prompt !== 'string' || prompt === '') {
    return { message: "Missing required parameter: 'prompt'.", param: 'prompt', code: 'missing_required_parameter' };
  }
  const model = (form.get('model') ?? 'dall-e-2') as string;
  if (model !== 'gpt-image-1' && model !== 'dall-e-2') {
    return {
      message: `Invalid value: '${model}'. Supported values are: 'dall-e-2' and 'gpt-image-1'.`,
      param: 'model',
      code: 'invalid_value',
    };
  }
  const tooLong = promptTooLong(prompt, PROMPT_LIMIT[model]);
  if (tooLong) return tooLong;
  const maxImages = model === 'gpt-image-1' ? 16 : 1;
  if (files.length > maxImages) {
    return {
      message: `Invalid 'image': too many images. Expected at most ${maxImages}, but got ${files.length}.`,
      param: 'image',
      code: 'invalid_value',
    };
  }
  const inputs: { data: Buffer; width: number; height: number }[] = [];
  for (const file of files) {
    const data = Buffer.from(await file.arrayBuffer());
    const meta = await sharp(data)
      .metadata()
      .catch(() => undefined);
    const allowed = model === 'gpt-image-1' ? ['png', 'jpeg', 'webp'] : ['png'];
    if (!meta?.format || !allowed.includes(meta.format) || !meta.width || !meta.height) {
      return {
        message: `Invalid file '${file.name}': unsupported mimetype ('${file.type}'). Supported file formats are ${quoteList(allowed.map((f) => `image/${f}`))}.`,
        param: 'image',
        code: 'unsupported_file_mimetype',
      };
    }
    if (data.length > (model === 'gpt-image-1' ? 50 : 4) * 1024 * 1024) {
      return { message: `Invalid file '${file.name}': file too large.`, param: 'image', code: 'invalid_value' };
    }
    inputs.push({ data, width: meta.width, height: meta.height });
  }
  const size = (form.get('size') ?? 'auto') as string;
  const sizes = model === 'gpt-image-1' ? EDIT_SIZES : ['256x256', '512x512', '1024x1024'];
  if (!sizes.includes(size)) {
    return {
      message: `Invalid value: '${size}'. Supported values are: ${quoteList(sizes)}.`,
      param: 'size',
      code: 'invalid_value',
    };
  }
  const outputFormat = (form.get('output_format') ?? 'png') as string;
  if (!OUTPUT_FORMATS.includes(outputFormat)) {
    return {
      message: `Invalid value: '${outputFormat}'. Supported values are: ${quoteList(OUTPUT_FORMATS)}.`,
      param: 'output_format',
      code: 'invalid_value',
    };
  }
  const quality = (form.get('quality') ?? 'auto') as string;
  if (!IMAGE_QUALITIES[model].includes(quality)) {
    return {
      message: `Invalid value: '${quality}'. Supported values are: ${quoteList(IMAGE_QUALITIES[model])}.`,
      param: 'quality',
      code: 'invalid_value',
    };
  }
  const fidelity = form.get('input_fidelity');
  if (fidelity !== null && fidelity !== 'low' && fidelity !== 'high') {
    return {
      message: `Invalid value: '${typeof fidelity === 'string' ? fidelity : 'a file'}'. Supported values are: 'low' and 'high'.`,
      param: 'input_fidelity',
      code: 'invalid_value',
    };
  }
  if (/\bforbidden\b/i.test(prompt)) {
    return {
      message: 'Your request was rejected by the safety system. If you believe this is an error, contact us.',
      code: 'moderation_blocked',
      type: 'image_generation_user_error',
    };
  }
  const [first] = inputs;
  const made =
    size !== 'auto'
      ? size
      : first.width / first.height >= 1.25
        ? '1536x1024'
        : first.width / first.height <= 0.8
          ? '1024x1536'
          : '1024x1024';
  const [width, height] = made.split('x').map(Number);
  const tint = sandboxPng(prompt, 1, 1);
  const { data: pixel } = await sharp(tint).raw().toBuffer({ resolveWithObject: true });
  const image = await sharp(first.data)
    .resize(width, height, { fit: 'fill' })
    .tint({ r: pixel[0], g: pixel[1], b: pixel[2] })
    .toFormat(outputFormat as 'png' | 'jpeg' | 'webp')
    .toBuffer();
  const textTokens = Math.ceil(prompt.length / 4);
  const imageTokens = inputs.length * (fidelity === 'high' ? 4160 : 1000);
  const outputTokens = width === height ? 1056 : 1584;
  return {
    response: {
      created: Math.floor(Date.now() / 1000),
      data: [{ b64_json: image.toString('base64') }],
      background: 'opaque',
      output_format: outputFormat as ImagesResponse['output_format'],
      size: made as ImagesResponse['size'],
      quality: quality === 'auto' ? 'medium' : (quality as ImagesResponse['quality']),
      usage: {
        total_tokens: textTokens + imageTokens + outputTokens,
        input_tokens: textTokens + imageTokens,
        output_tokens: outputTokens,
        input_tokens_details: { text_tokens: textTokens, image_tokens: imageTokens },
      },
    },
  };
}

/**
 * An in-process stand-in for OpenAI's Images, Audio transcription and Chat completions endpoints (sandbox mode and
 * tests): the same paths, headers, bodies and status codes, made-up content (hashed PNGs, template transcripts,
 * marked translations), and the shared knobs for latency, 429s and 500s. Returned unlistened.
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
      const outputFormat = request.output_format ?? 'png';
      if (outputFormat !== 'png') {
        for (const image of data) {
          image.b64_json = (
            await sharp(Buffer.from(image.b64_json!, 'base64')).toFormat(outputFormat).toBuffer()
          ).toString('base64');
        }
      }
      const response: ImagesResponse = { created: Math.floor(Date.now() / 1000), data };
      if (request.model === 'gpt-image-1') {
        const textTokens = Math.ceil(request.prompt.length / 4);
        const outputTokens = 1056 * data.length;
        Object.assign(response, {
          background: 'opaque',
          output_format: outputFormat,
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

  app.post('/v1/images/edits', { onRequest: authorize }, (req, reply) =>
    track(async () => {
      const contentType = req.headers['content-type'] ?? '';
      if (!Buffer.isBuffer(req.body) || !contentType.startsWith('multipart/form-data')) {
        stats.count('POST /v1/images/edits', req.body ?? null);
        return fail(reply, { message: "Invalid Content-Type header (expected 'multipart/form-data')." });
      }
      let form: globalThis.FormData;
      try {
        form = await new Response(req.body, { headers: { 'content-type': contentType } }).formData();
      } catch {
        stats.count('POST /v1/images/edits', null);
        return fail(reply, { message: 'Could not parse multipart form.' });
      }
      stats.count('POST /v1/images/edits', formSummary(form));
      if (await applyKnobs(reply)) return reply;
      const edited = await editImage(form);
      if (!('response' in edited)) return fail(reply, edited);
      stats.submissions++;
      return reply.code(200).send(edited.response);
    }),
  );

  app.post('/v1/chat/completions', { onRequest: authorize }, (req, reply) =>
    track(async () => {
      stats.count('POST /v1/chat/completions', req.body);
      if (await applyKnobs(reply)) return reply;
      const checked = checkChatRequest(req.body);
      if (!('request' in checked)) return fail(reply, checked);
      const { request } = checked;
      const { content, refusal } = chatAnswer(request);
      const promptTokens = Math.ceil(request.messages.reduce((sum, m) => sum + m.content.length, 0) / 4);
      const completionTokens = Math.ceil((content ?? refusal ?? '').length / 4);
      const completion: ChatCompletion = {
        id: `chatcmpl-${randomUUID().replace(/-/g, '')}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        choices: [
          { index: 0, message: { role: 'assistant', content, refusal }, logprobs: null, finish_reason: 'stop' },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
          prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
        },
        service_tier: 'default',
      };
      stats.submissions++;
      return reply.code(200).send(completion);
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

/** OpenAI's answer to a prompt past the model's limit, or undefined when it fits. */
function promptTooLong(prompt: string, limit: number) {
  if (prompt.length <= limit) return undefined;
  return {
    message: `Invalid 'prompt': string too long. Expected a string with maximum length ${limit}, but got a string with length ${prompt.length} instead.`,
    param: 'prompt',
    code: 'string_above_max_length',
  };
}
