import { UrlGuard } from '../../../security/url-guard';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, Server } from 'node:http';
import { AddressInfo, createServer as createTcpServer } from 'node:net';
import { inflateSync } from 'node:zlib';
import { FastifyInstance } from 'fastify';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { downloadMedia } from '../../media-download';
import { ProviderError, ProviderErrorCode, ProviderOutput, ProviderRun, StartOutcome } from '../../provider.port';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createOpenAiEmulator } from '../../../../sandbox/emulators/openai.emulator';
import { crc32, sandboxPng } from '../../../../sandbox/emulators/sandbox-png';
import { OpenAiImagesAdapter } from './openai-images.adapter';
import { OpenAiWhisperAdapter, subtitleText } from './openai-whisper.adapter';

// --- A tiny checker for the official OpenAPI subset (no validator dependency) ---------------------------------------

interface Schema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  nullable?: boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
}

const SPEC = JSON.parse(readFileSync('/work/shared/specs/openai-images-audio.openapi.json', 'utf8')) as {
  components: { schemas: Record<string, Schema> };
};

interface CheckOptions {
  /** Requests: every field sent must be a declared property (the spec leaves most objects open). */
  strict?: boolean;
  /** Multipart bodies: every value arrives as text, files as {filename, size, type}. */
  multipart?: boolean;
}

function resolve(schema: Schema): Schema {
  let s = schema;
  while (s.$ref) s = SPEC.components.schemas[s.$ref.split('/').pop()!];
  return s;
}

function typeMatches(value: unknown, type: string, s: Schema, opts: CheckOptions): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'string':
      if (opts.multipart && s.format === 'binary')
        return typeof value === 'object' && value !== null && 'filename' in value;
      return typeof value === 'string';
    case 'integer':
      if (opts.multipart && typeof value === 'string') return /^-?\d+$/.test(value);
      return Number.isInteger(value);
    case 'number':
      if (opts.multipart && typeof value === 'string') return value.trim() !== '' && Number.isFinite(Number(value));
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return opts.multipart ? value === 'true' || value === 'false' : typeof value === 'boolean';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      return true;
  }
}

function check(value: unknown, schema: Schema, path: string, opts: CheckOptions): string[] {
  const s = resolve(schema);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) {
    const ok = variants.some((variant) => check(value, variant, path, opts).length === 0);
    return ok ? [] : [`${path}: ${JSON.stringify(value)} matches none of the allowed variants`];
  }
  if (value === null && s.nullable) return [];
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length > 0 && !types.some((type) => typeMatches(value, type, s, opts))) {
    return [`${path}: ${JSON.stringify(value)} is not of type ${types.join('|')}`];
  }
  const problems: string[] = [];
  if (s.enum && !s.enum.includes(value))
    problems.push(`${path}: ${JSON.stringify(value)} is not one of ${s.enum.join(', ')}`);
  const number = typeof value === 'string' && opts.multipart ? Number(value) : value;
  if (typeof number === 'number') {
    if (s.minimum !== undefined && number < s.minimum) problems.push(`${path}: below ${s.minimum}`);
    if (s.maximum !== undefined && number > s.maximum) problems.push(`${path}: above ${s.maximum}`);
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) problems.push(`${path}: fewer than ${s.minItems} items`);
    if (s.maxItems !== undefined && value.length > s.maxItems) problems.push(`${path}: more than ${s.maxItems} items`);
    if (s.items) value.forEach((item, i) => problems.push(...check(item, s.items!, `${path}[${i}]`, opts)));
  }
  const isFile = opts.multipart && s.format === 'binary';
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isFile && s.properties) {
    const object = value as Record<string, unknown>;
    for (const key of s.required ?? []) if (object[key] === undefined) problems.push(`${path}.${key}: required`);
    for (const [key, field] of Object.entries(object)) {
      // Multipart arrays travel as repeated `key[]` parts.
      const name = opts.multipart ? key.replace(/\[\]$/, '') : key;
      const property = s.properties[name];
      if (!property) {
        if (opts.strict) problems.push(`${path}.${key}: not a property of the schema`);
        continue;
      }
      problems.push(...check(field, property, `${path}.${key}`, opts));
    }
  }
  return problems;
}

function schemaProblems(value: unknown, schemaName: string, opts: CheckOptions = {}): string[] {
  return check(value, { $ref: `#/components/schemas/${schemaName}` }, schemaName, opts);
}

// --- Fixtures --------------------------------------------------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const AUDIO_BYTES = 40_000;

const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
let emulator: FastifyInstance;
let audioServer: Server;
let apiBase: string;
let audioBase: string;
let config: AppConfig;
let images: OpenAiImagesAdapter;
let whisper: OpenAiWhisperAdapter;

function configFor(overrides: Record<string, string> = {}): AppConfig {
  return AppConfig.fromEnv({
    OPENAI_API_KEY: SANDBOX_API_KEY,
    OPENAI_BASE_URL: apiBase,
    PROVIDER_HTTP_TIMEOUT_MS: '2000',
    // The test's audio server is on loopback.
    WEBHOOK_ALLOW_PRIVATE: 'true',
    ...overrides,
  });
}

function ctx<R extends TaskRequest>(task: R, signal = new AbortController().signal): R & ProviderRun {
  return { ...task, taskId: 'task-1', signal, reportProgress: () => undefined };
}

type ImageInput = TaskInputOf<TaskType.ImageGeneration>;
type AudioInput = TaskInputOf<TaskType.AudioTranscription>;

function completed(outcome: StartOutcome): ProviderOutput & { cost?: number } {
  if (outcome.kind !== 'completed') throw new Error(`expected a completed outcome, got ${outcome.kind}`);
  return { ...outcome.output, cost: outcome.cost?.amount };
}

/** The ProviderError a call fails with (fails the test when it succeeds). */
async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

function lastBody(): Record<string, any> {
  const body = stats.lastBodies[stats.lastBodies.length - 1];
  if (!body) throw new Error('the emulator saw no body');
  return body as Record<string, any>;
}

const image = (input: ImageInput) => images.start(ctx({ type: TaskType.ImageGeneration, input }));
const transcribe = (input: AudioInput) => whisper.start(ctx({ type: TaskType.AudioTranscription, input }));

beforeAll(async () => {
  emulator = createOpenAiEmulator({ knobs, stats });
  await emulator.listen({ port: 0, host: '127.0.0.1' });
  apiBase = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}/v1`;

  // The user's audio host: a file with an extension, one without, and a 61 s one (at the 16 kB/s guess).
  audioServer = createServer((req, res) => {
    const files: Record<string, [string, number]> = {
      '/talk.mp3': ['audio/mpeg', AUDIO_BYTES],
      '/clip': ['audio/wav', 20_000],
      '/long.mp3': ['audio/mpeg', 61 * 16_000],
    };
    const file = files[req.url ?? ''];
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'content-length': file[1] }).end(Buffer.alloc(file[1]));
  });
  await new Promise<void>((done) => audioServer.listen(0, '127.0.0.1', done));
  audioBase = `http://127.0.0.1:${(audioServer.address() as AddressInfo).port}`;

  config = configFor();
  images = new OpenAiImagesAdapter(config);
  whisper = new OpenAiWhisperAdapter(config);
});

afterAll(async () => {
  await emulator.close();
  audioServer.closeAllConnections();
  await new Promise((done) => audioServer.close(done));
});

beforeEach(() => {
  Object.assign(knobs, DEFAULT_KNOBS);
  stats.reset();
});

// --- Images ------------------------------------------------------------------------------------------------------------

describe('OpenAiImagesAdapter', () => {
  it('describes itself and is configured by the key', () => {
    expect(images.name).toBe('openai-images');
    expect(images.supports(TaskType.ImageGeneration)).toBe(true);
    expect(images.supports(TaskType.AudioTranscription)).toBe(false);
    expect(images.qualityScore).toBe(0.9);
    expect(images.isConfigured()).toBe(true);
    expect(new OpenAiImagesAdapter(AppConfig.fromEnv({})).isConfigured()).toBe(false);
  });

  it.each([
    ['dall-e-3 (default)', { prompt: 'a lighthouse' }],
    [
      'dall-e-3 hd tall',
      { prompt: 'a lighthouse', model: 'dall-e-3', size: '1024x1792', quality: 'hd', style: 'anime' },
    ],
    ['dall-e-2', { prompt: 'a lighthouse', model: 'dall-e-2', size: '512x512', n: 4, style: 'artistic' }],
    ['gpt-image-1', { prompt: 'a lighthouse', model: 'gpt-image-1', size: '1024x1792', quality: 'hd', n: 2 }],
  ] satisfies [string, ImageInput][])('sends %s a request valid against CreateImageRequest', async (_label, input) => {
    await image(input);
    expect(stats.requests.get('POST /v1/images/generations')).toBe(1);
    expect(schemaProblems(lastBody(), 'CreateImageRequest', { strict: true })).toEqual([]);
  });

  it.each([
    [
      { prompt: 'p', style: 'realistic', quality: 'hd' },
      { model: 'dall-e-3', n: 1, size: '1024x1024', quality: 'hd', style: 'natural', response_format: 'b64_json' },
    ],
    [
      { prompt: 'p', model: 'dall-e-3', style: 'artistic', size: '1024x1792' },
      { model: 'dall-e-3', n: 1, size: '1024x1792', quality: 'standard', style: 'vivid', response_format: 'b64_json' },
    ],
    [
      { prompt: 'p', model: 'dall-e-3', style: 'anime' },
      { model: 'dall-e-3', n: 1, size: '1024x1024', quality: 'standard', style: 'vivid', response_format: 'b64_json' },
    ],
    [
      { prompt: 'p', model: 'dall-e-2', style: 'anime', size: '512x512', n: 3 },
      { model: 'dall-e-2', n: 3, size: '512x512', response_format: 'b64_json' },
    ],
    [
      { prompt: 'p', model: 'gpt-image-1', style: 'anime', size: '1024x1792', quality: 'standard' },
      { model: 'gpt-image-1', n: 1, size: '1024x1536', quality: 'medium' },
    ],
    [
      { prompt: 'p', model: 'gpt-image-1', size: '1024x1024', quality: 'hd', n: 2 },
      { model: 'gpt-image-1', n: 2, size: '1024x1024', quality: 'high' },
    ],
  ] satisfies [ImageInput, object][])('maps %j onto %j', async (input, expected) => {
    completed(await image(input));
    // Exactly these fields: no style for dall-e-2/gpt-image-1, no response_format for gpt-image-1.
    expect(lastBody()).toEqual({ prompt: 'p', ...expected });
  });

  it('returns the images as PNG bytes with the revised prompt and the cost', async () => {
    const output = completed(await image({ prompt: 'a red fox', quality: 'hd' }));
    expect(output.artifacts).toHaveLength(1);
    const [artifact] = output.artifacts;
    expect(artifact).toMatchObject({ contentType: 'image/png', filename: 'image-1.png' });
    expect(artifact.data!.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(artifact.data).toEqual(sandboxPng('dall-e-3|1024x1024|a red fox|0'));
    expect(output.data).toEqual({ model: 'dall-e-3', revised_prompt: expect.stringContaining('a red fox'), images: 1 });
    expect(output.cost).toBe(0.08);
  });

  it('returns every image of a multi-image request, numbered', async () => {
    const output = completed(await image({ prompt: 'tiles', model: 'gpt-image-1', n: 3 }));
    expect(output.artifacts.map((a) => a.filename)).toEqual(['image-1.png', 'image-2.png', 'image-3.png']);
    for (const a of output.artifacts) expect(a.data!.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(output.artifacts[0].data).not.toEqual(output.artifacts[1].data);
    expect(output.data).toEqual({ model: 'gpt-image-1', images: 3 });
    expect(output.cost).toBeCloseTo(3 * 0.042, 6);
  });

  it.each([
    [{ prompt: 'p' }, 0.04],
    [{ prompt: 'p', quality: 'hd' }, 0.08],
    [{ prompt: 'p', size: '1024x1792' }, 0.08],
    [{ prompt: 'p', size: '1024x1792', quality: 'hd' }, 0.12],
    [{ prompt: 'p', model: 'dall-e-2', size: '512x512', n: 3 }, 0.054],
    [{ prompt: 'p', model: 'dall-e-2', n: 4 }, 0.08],
    [{ prompt: 'p', model: 'gpt-image-1' }, 0.042],
    [{ prompt: 'p', model: 'gpt-image-1', size: '1024x1792', quality: 'hd', n: 2 }, 0.5],
    [{ prompt: 'p', model: 'stable-diffusion-xl' }, 0],
  ] satisfies [ImageInput, number][])('estimates %j at $%d', (input, amount) => {
    expect(images.estimateCost({ type: TaskType.ImageGeneration, input })).toEqual({ amount, currency: 'USD' });
  });

  it.each([
    ['n=2 with dall-e-3', { prompt: 'p', n: 2 }, [{ field: 'n', message: 'n: dall-e-3 makes one image per request' }]],
    [
      '512x512 with dall-e-3',
      { prompt: 'p', size: '512x512' },
      [{ field: 'size', message: expect.stringMatching(/^size: dall-e-3 does not make 512x512/) }],
    ],
    [
      'hd with dall-e-2',
      { prompt: 'p', model: 'dall-e-2', quality: 'hd' },
      [{ field: 'quality', message: 'quality: dall-e-2 has standard quality only' }],
    ],
    [
      '1024x1792 with dall-e-2',
      { prompt: 'p', model: 'dall-e-2', size: '1024x1792' },
      [{ field: 'size', message: expect.stringMatching(/^size: /) }],
    ],
    [
      'a 1001-character prompt with dall-e-2',
      { prompt: 'x'.repeat(1001), model: 'dall-e-2' },
      [{ field: 'prompt', message: 'prompt: dall-e-2 accepts at most 1000 characters' }],
    ],
    [
      '512x512 with gpt-image-1',
      { prompt: 'p', model: 'gpt-image-1', size: '512x512' },
      [{ field: 'size', message: expect.stringMatching(/^size: gpt-image-1/) }],
    ],
    [
      "another vendor's model",
      { prompt: 'p', model: 'stable-diffusion-xl' },
      [{ field: 'model', message: expect.stringMatching(/^model: openai-images cannot serve/) }],
    ],
    ['a prompt of spaces only', { prompt: '   ' }, [{ field: 'prompt', message: 'prompt: required' }]],
    [
      'several problems at once',
      { prompt: 'p', model: 'dall-e-2', size: '1024x1792', quality: 'hd' },
      [
        { field: 'size', message: expect.stringMatching(/^size: /) },
        { field: 'quality', message: 'quality: dall-e-2 has standard quality only' },
      ],
    ],
  ] satisfies [string, ImageInput, unknown[]][])('refuses %s', (_label, input, problems) => {
    expect(images.validate({ type: TaskType.ImageGeneration, input })).toEqual(problems);
  });

  it.each([
    { prompt: 'p' },
    { prompt: 'x'.repeat(1000), model: 'dall-e-2', size: '512x512', n: 4 },
    { prompt: 'x'.repeat(4000), model: 'dall-e-3', size: '1024x1792', quality: 'hd', style: 'anime' },
    { prompt: 'x'.repeat(4000), model: 'gpt-image-1', size: '1024x1792', quality: 'hd', n: 4 },
  ] satisfies ImageInput[])('accepts input %#', (input) => {
    expect(images.validate({ type: TaskType.ImageGeneration, input })).toEqual([]);
  });

  it('refuses an invalid input at start, before calling OpenAI', async () => {
    const err = await failure(image({ prompt: 'p', n: 2 }));
    expect(err).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    expect(stats.requests.size).toBe(0);
  });

  describe('error classification', () => {
    it('401 → permanent provider_auth_failed, without the key in the message', async () => {
      const wrongKey = 'sk-wrong-0123456789abcdefghij';
      const adapter = new OpenAiImagesAdapter(configFor({ OPENAI_API_KEY: wrongKey }));
      const err = await failure(adapter.start(ctx({ type: TaskType.ImageGeneration, input: { prompt: 'p' } })));
      expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false, status: 401 });
      expect(err.message).toContain('Incorrect API key provided');
      expect(err.message).not.toContain(wrongKey);
    });

    it('400 content policy → permanent content_policy', async () => {
      const err = await failure(image({ prompt: 'something forbidden here' }));
      expect(err).toMatchObject({ code: ProviderErrorCode.ContentPolicy, retryable: false, status: 400 });
      expect(err.message).toContain('safety system');
    });

    it('429 → transient rate_limited after Retry-After', async () => {
      knobs.rateLimitRate = 1;
      const err = await failure(image({ prompt: 'p' }));
      expect(err).toMatchObject({
        code: ProviderErrorCode.RateLimited,
        retryable: true,
        retryAfterMs: 1000,
        status: 429,
      });
    });

    it('500 → transient provider_unavailable', async () => {
      knobs.failureRate = 1;
      const err = await failure(image({ prompt: 'p' }));
      expect(err).toMatchObject({ code: ProviderErrorCode.Unavailable, retryable: true, status: 500 });
      expect(err.message).toContain('The server had an error');
    });

    it('a closed port → transient network_error', async () => {
      const probe = createTcpServer();
      await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
      const { port } = probe.address() as AddressInfo;
      await new Promise((done) => probe.close(done));
      const adapter = new OpenAiImagesAdapter(configFor({ OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1` }));
      const err = await failure(adapter.start(ctx({ type: TaskType.ImageGeneration, input: { prompt: 'p' } })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Network, retryable: true });
    });

    it('an answer slower than the HTTP timeout → transient provider_timeout', async () => {
      knobs.latencyMs = 600;
      const adapter = new OpenAiImagesAdapter(configFor({ PROVIDER_HTTP_TIMEOUT_MS: '150' }));
      const err = await failure(adapter.start(ctx({ type: TaskType.ImageGeneration, input: { prompt: 'p' } })));
      expect(err).toMatchObject({ code: ProviderErrorCode.Timeout, retryable: true });
    });

    it('rejects with the abort (not a ProviderError) when the task is aborted mid-call', async () => {
      knobs.latencyMs = 500;
      const controller = new AbortController();
      const started = Date.now();
      const call = images.start(ctx({ type: TaskType.ImageGeneration, input: { prompt: 'p' } }, controller.signal));
      setTimeout(() => controller.abort(), 50);
      const err: unknown = await call.then(
        () => new Error('expected a rejection'),
        (e: unknown) => e,
      );
      expect(err).not.toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ name: 'AbortError' });
      expect(Date.now() - started).toBeLessThan(450);
    });
  });
});

// --- Transcription -----------------------------------------------------------------------------------------------------

describe('OpenAiWhisperAdapter', () => {
  const SPOKEN = `This is a sandbox transcript of talk.mp3, ${AUDIO_BYTES} bytes of audio.`;

  it('describes itself', () => {
    expect(whisper.name).toBe('openai-whisper');
    expect(whisper.supports(TaskType.AudioTranscription)).toBe(true);
    expect(whisper.qualityScore).toBe(0.85);
    expect(whisper.isConfigured()).toBe(true);
    expect(whisper.estimateCost({ type: TaskType.AudioTranscription, input: { audio_url: 'x' } })).toEqual({
      amount: 0.006,
      currency: 'USD',
    });
  });

  it.each([
    [
      { audio_url: 'u', model: 'gpt-4o-transcribe', response_format: 'srt' },
      { field: 'response_format', message: 'response_format: gpt-4o-transcribe returns json only' },
    ],
    [
      { audio_url: 'u', model: 'gpt-4o-mini-transcribe', response_format: 'text' },
      { field: 'response_format', message: 'response_format: gpt-4o-mini-transcribe returns json only' },
    ],
    [
      { audio_url: 'u', model: 'nova-3' },
      { field: 'model', message: expect.stringMatching(/^model: openai-whisper cannot serve "nova-3"/) },
    ],
    [
      { audio_url: 'u', speaker_labels: true },
      { field: 'speaker_labels', message: 'speaker_labels: openai-whisper does not label speakers' },
    ],
    [
      { audio_url: 'u', model: 'universal-2' },
      { field: 'model', message: expect.stringMatching(/^model: openai-whisper cannot serve "universal-2"/) },
    ],
  ] satisfies [AudioInput, unknown][])('refuses %j', (input, problem) => {
    expect(whisper.validate({ type: TaskType.AudioTranscription, input })).toEqual([problem]);
  });

  it.each([
    { audio_url: 'u' },
    { audio_url: 'u', model: 'gpt-4o-transcribe', response_format: 'json' },
    { audio_url: 'u', model: 'whisper-1', response_format: 'vtt', language: 'pt' },
    { audio_url: 'u', speaker_labels: false },
  ] satisfies AudioInput[])('accepts %j', (input) => {
    expect(whisper.validate({ type: TaskType.AudioTranscription, input })).toEqual([]);
  });

  it('uploads the file as multipart valid against CreateTranscriptionRequest, and keeps the JSON transcript', async () => {
    const output = completed(
      await transcribe({
        audio_url: `${audioBase}/talk.mp3`,
        language: 'en',
        model: 'whisper-1',
        response_format: 'json',
      }),
    );
    const sent = lastBody();
    expect(sent).toEqual({
      file: { filename: 'talk.mp3', size: AUDIO_BYTES, type: 'audio/mpeg' },
      model: 'whisper-1',
      language: 'en',
      response_format: 'json',
    });
    expect(schemaProblems(sent, 'CreateTranscriptionRequest', { strict: true, multipart: true })).toEqual([]);

    expect(output.artifacts).toHaveLength(1);
    const [artifact] = output.artifacts;
    expect(artifact).toMatchObject({ contentType: 'application/json', filename: 'transcript.json' });
    const stored = JSON.parse(artifact.data!.toString('utf8'));
    expect(schemaProblems(stored, 'CreateTranscriptionResponseJson')).toEqual([]);
    expect(output.data).toEqual({ text: stored.text, format: 'json', language: 'en', duration_s: 3 });
    expect(output.data!.text).toContain(SPOKEN);
    expect(output.cost).toBe(0.006); // 3 s → one started minute
  });

  it.each([
    ['srt', 'application/x-subrip', 'transcript.srt', /^1\n00:00:00,000 --> 00:00:01,250\n/],
    ['vtt', 'text/vtt', 'transcript.vtt', /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.250\n/],
    ['text', 'text/plain', 'transcript.txt', /^This is a sandbox transcript/],
  ] as const)('keeps a %s transcript as %s and its plain text', async (format, contentType, filename, raw) => {
    const output = completed(await transcribe({ audio_url: `${audioBase}/talk.mp3`, response_format: format }));
    expect(lastBody().response_format).toBe(format);
    const [artifact] = output.artifacts;
    expect(artifact).toMatchObject({ contentType, filename });
    expect(artifact.data!.toString('utf8')).toMatch(raw);
    const text = output.data!.text as string;
    expect(text).toMatch(new RegExp(`^${SPOKEN.replace(/[.]/g, '\\.')} No one listened to it; .*up\\.$`));
    expect(text).not.toMatch(/-->|^\d+$|WEBVTT/m);
    expect(output.data).toEqual({ text, format });
    expect(output.cost).toBe(0.006); // duration unknown: 40 kB ≈ 2.5 s → one minute
  });

  it('reads the duration and language of verbose_json', async () => {
    const output = completed(
      await transcribe({ audio_url: `${audioBase}/talk.mp3`, language: 'pt', response_format: 'verbose_json' }),
    );
    const stored = JSON.parse(output.artifacts[0].data!.toString('utf8'));
    expect(schemaProblems(stored, 'CreateTranscriptionResponseVerboseJson')).toEqual([]);
    expect(stored.segments).toHaveLength(2);
    expect(output.data).toEqual({ text: stored.text, format: 'verbose_json', language: 'portuguese', duration_s: 2.5 });
  });

  it('bills per started minute from the duration OpenAI reports', async () => {
    const output = completed(await transcribe({ audio_url: `${audioBase}/long.mp3` }));
    expect(output.data!.duration_s).toBe(61);
    expect(output.cost).toBe(0.012);
  });

  it('estimates gpt-4o-mini-transcribe from the file size (its usage is in tokens)', async () => {
    const output = completed(
      await transcribe({
        audio_url: `${audioBase}/talk.mp3`,
        model: 'gpt-4o-mini-transcribe',
        response_format: 'json',
      }),
    );
    expect(lastBody().model).toBe('gpt-4o-mini-transcribe');
    expect(output.data).toEqual({ text: expect.stringContaining(SPOKEN), format: 'json' });
    expect(output.cost).toBe(0.003);
  });

  it('names an extension-less download after its content type, as OpenAI needs', async () => {
    completed(await transcribe({ audio_url: `${audioBase}/clip` }));
    expect(lastBody().file).toEqual({ filename: 'clip.wav', size: 20_000, type: 'audio/wav' });
  });

  it('fails permanently with input_unreachable when audio_url answers 404, without calling OpenAI', async () => {
    const err = await failure(transcribe({ audio_url: `${audioBase}/missing.mp3` }));
    expect(err).toMatchObject({ code: ProviderErrorCode.InputUnreachable, retryable: false });
    expect(stats.requests.size).toBe(0);
  });

  it('downloadMedia refuses a file over the cap with input_too_large', async () => {
    const err = await failure(
      downloadMedia(`${audioBase}/talk.mp3`, join(tmpdir(), `talk-${randomUUID()}.mp3`), {
        guard: new UrlGuard(true),
        maxBytes: 1000,
        timeoutMs: 2000,
      }),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InputTooLarge, retryable: false });
  });

  it('refuses gpt-4o with srt at start, before downloading anything', async () => {
    const err = await failure(
      transcribe({ audio_url: `${audioBase}/talk.mp3`, model: 'gpt-4o-transcribe', response_format: 'srt' }),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.InputInvalid, retryable: false });
    expect(stats.requests.size).toBe(0);
  });

  it('classifies OpenAI failures like the images adapter (500, 401)', async () => {
    knobs.failureRate = 1;
    expect(await failure(transcribe({ audio_url: `${audioBase}/talk.mp3` }))).toMatchObject({
      code: ProviderErrorCode.Unavailable,
      retryable: true,
    });
    knobs.failureRate = 0;
    const adapter = new OpenAiWhisperAdapter(configFor({ OPENAI_API_KEY: 'sk-another-key-0000000000' }));
    const err = await failure(
      adapter.start(ctx({ type: TaskType.AudioTranscription, input: { audio_url: `${audioBase}/talk.mp3` } })),
    );
    expect(err).toMatchObject({ code: ProviderErrorCode.AuthFailed, retryable: false });
  });
});

describe('subtitleText', () => {
  it('keeps only the spoken lines of SRT and WebVTT', () => {
    expect(
      subtitleText(
        '1\r\n00:00:00,000 --> 00:00:01,000\r\nHello\r\nthere\r\n\r\n2\r\n00:00:01,000 --> 00:00:02,000\r\n42\r\n',
      ),
    ).toBe('Hello there 42');
    expect(
      subtitleText('WEBVTT\n\nNOTE a comment\n\nintro\n00:00.000 --> 00:01.000 align:start\n<v Ann>Hi</v>\n'),
    ).toBe('Hi');
  });
});

// --- The emulator on its own -------------------------------------------------------------------------------------------

describe('OpenAI emulator', () => {
  const post = (path: string, body: unknown, key = SANDBOX_API_KEY) =>
    fetch(`${apiBase}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it.each([
    ['a missing prompt', { model: 'dall-e-3' }, 'prompt'],
    ['n=2 with dall-e-3', { prompt: 'p', model: 'dall-e-3', n: 2 }, 'n'],
    ['512x512 with dall-e-3', { prompt: 'p', model: 'dall-e-3', size: '512x512' }, 'size'],
    ['1024x1792 with dall-e-2', { prompt: 'p', model: 'dall-e-2', size: '1024x1792' }, 'size'],
    ['hd with dall-e-2', { prompt: 'p', model: 'dall-e-2', quality: 'hd' }, 'quality'],
    [
      'response_format with gpt-image-1',
      { prompt: 'p', model: 'gpt-image-1', response_format: 'b64_json' },
      'response_format',
    ],
    ['style with dall-e-2', { prompt: 'p', model: 'dall-e-2', style: 'vivid' }, 'style'],
    ['a 1001-character prompt with dall-e-2', { prompt: 'x'.repeat(1001), model: 'dall-e-2' }, 'prompt'],
    ['an unknown field', { prompt: 'p', colour: 'red' }, null],
  ])('answers 400 in the OpenAI shape to %s', async (_label, body, param) => {
    const res = await post('/images/generations', body);
    expect(res.status).toBe(400);
    expect(res.headers.get('x-sandbox')).toBe('true');
    const json: any = await res.json();
    expect(schemaProblems(json, 'ErrorResponse')).toEqual([]);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param });
  });

  it('answers 401 without a bearer, and 404 in the OpenAI shape for unknown paths', async () => {
    const anonymous = await fetch(`${apiBase}/images/generations`, { method: 'POST', body: '{}' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('x-sandbox')).toBe('true');
    expect(schemaProblems(await anonymous.json(), 'ErrorResponse')).toEqual([]);
    const unknown = await post('/images/variations', { prompt: 'p' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.message).toBe('Invalid URL (POST /v1/images/variations)');
  });

  it('serves response_format=url images from an absolute URL', async () => {
    const res = await post('/images/generations', {
      prompt: 'a boat',
      model: 'dall-e-2',
      n: 2,
      response_format: 'url',
    });
    expect(res.status).toBe(200);
    const json: any = await res.json();
    expect(schemaProblems(json, 'ImagesResponse')).toEqual([]);
    expect(json.data).toHaveLength(2);
    expect(json.data[0].url).toMatch(new RegExp(`^${apiBase}/files/[0-9a-f-]+\\.png$`));
    const file = await fetch(json.data[0].url);
    expect(file.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await file.arrayBuffer())).toEqual(sandboxPng('dall-e-2|1024x1024|a boat|0'));
    expect((await fetch(`${apiBase}/files/nope.png`)).status).toBe(404);
  });

  it('answers gpt-image-1 in base64 with usage, valid against ImagesResponse', async () => {
    const res = await post('/images/generations', { prompt: 'p', model: 'gpt-image-1', quality: 'high' });
    const json: any = await res.json();
    expect(schemaProblems(json, 'ImagesResponse')).toEqual([]);
    expect(json).toMatchObject({ quality: 'high', size: '1024x1024', output_format: 'png' });
    expect(Buffer.from(json.data[0].b64_json, 'base64').subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('refuses an audio file without a known extension, and gpt-4o with verbose_json', async () => {
    const send = async (filename: string, model: string, format: string) => {
      const form = new FormData();
      form.append('file', new Blob([Buffer.alloc(100)]), filename);
      form.append('model', model);
      form.append('response_format', format);
      const res = await fetch(`${apiBase}/audio/transcriptions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SANDBOX_API_KEY}` },
        body: form,
      });
      return { status: res.status, body: await res.json() };
    };
    expect(await send('talk.txt', 'whisper-1', 'json')).toMatchObject({ status: 400 });
    expect(await send('talk.mp3', 'gpt-4o-transcribe', 'verbose_json')).toMatchObject({
      status: 400,
      body: { error: { param: 'response_format' } },
    });
    expect(await send('talk.mp3', 'whisper-1', 'json')).toMatchObject({ status: 200 });
  });
});

describe('sandboxPng', () => {
  /** The chunks of a PNG, each checked against its CRC. */
  function chunks(png: Buffer): { type: string; data: Buffer }[] {
    const out: { type: string; data: Buffer }[] = [];
    for (let at = 8; at < png.length;) {
      const length = png.readUInt32BE(at);
      const typed = png.subarray(at + 4, at + 8 + length);
      expect(png.readUInt32BE(at + 8 + length)).toBe(crc32(typed));
      out.push({ type: typed.subarray(0, 4).toString('ascii'), data: typed.subarray(4) });
      at += 12 + length;
    }
    return out;
  }

  it('is a well-formed 64×64 RGB PNG', () => {
    const png = sandboxPng('a lighthouse');
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const parts = chunks(png);
    expect(parts.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const header = parts[0].data;
    expect([header.readUInt32BE(0), header.readUInt32BE(4), header[8], header[9]]).toEqual([64, 64, 8, 2]);
    expect(inflateSync(parts[1].data)).toHaveLength(64 * (1 + 64 * 3));
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('is the same for the same text and differs between texts', () => {
    expect(sandboxPng('a')).toEqual(sandboxPng('a'));
    expect(sandboxPng('a')).not.toEqual(sandboxPng('b'));
    expect(chunks(sandboxPng('wide', 32, 16))[0].data.readUInt32BE(0)).toBe(32);
  });
});
