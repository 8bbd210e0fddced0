import { randomUUID } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ASSEMBLYAI_LANGUAGES,
  ASSEMBLYAI_SPEECH_MODELS,
  AssemblyAiErrorBody,
  AssemblyAiTranscript,
  AssemblyAiTranscriptStatus,
  AssemblyAiUtterance,
  AssemblyAiWord,
  isAssemblyAiSpeechModel,
  UNIVERSAL_3_PRO_LANGUAGES,
} from '../../src/providers/adapters/assemblyai/assemblyai.types';
import { clientLeftDuringLatency, EmulatorKnobs, EmulatorStats, roll, SANDBOX_API_KEY } from './emulator-knobs';

export interface AssemblyAiEmulatorOptions {
  knobs: EmulatorKnobs;
  stats: EmulatorStats;
  /** The one key accepted in the authorization header (default: the sandbox key). */
  apiKey?: string;
}

/** Uploads kept; the oldest go first beyond this. */
const MAX_UPLOADS = 500;
const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;
/** Transcripts kept for GET; the oldest finished ones go first beyond this. */
const MAX_TRANSCRIPTS = 10_000;
/** The emulator's (and the adapters') guess of compressed speech: 16 kB per second. */
const AUDIO_BYTES_PER_SECOND = 16_000;
/** AssemblyAI's documented minimum. */
const MIN_AUDIO_MS = 160;
const DEFAULT_CHARS_PER_CAPTION = 80;

/** AssemblyAI's own wording, from its API reference and its "common errors" guide. */
const UNAUTHORIZED = 'Authentication error, API token missing/invalid';
const TOO_MANY = 'Too Many Requests';
const LOOKUP_FAILED = 'Transcript lookup error, transcript id not found';
const SERVER_ERROR = 'Server error, developers have been alerted.';
const TOO_SHORT = 'Audio duration is too short.';

/** Parameters of POST /v2/transcript in AssemblyAI's spec: known ones the emulator does not act on are accepted. */
const KNOWN_PARAMS = new Set([
  'audio_url', 'speech_models', 'language_code', 'language_detection', 'speaker_labels', 'speakers_expected',
  'punctuate', 'format_text', 'audio_start_from', 'audio_end_at', 'auto_chapters', 'auto_highlights',
  'content_safety', 'content_safety_confidence', 'custom_spelling', 'disfluencies', 'entity_detection',
  'filter_profanity', 'iab_categories', 'keyterms_prompt', 'language_codes', 'language_confidence_threshold',
  'language_detection_options', 'multichannel', 'prompt', 'redact_pii', 'redact_pii_audio',
  'redact_pii_audio_options', 'redact_pii_audio_quality', 'redact_pii_policies', 'redact_pii_sub',
  'sentiment_analysis', 'speaker_options', 'speech_threshold', 'speech_understanding', 'summarization',
  'summary_model', 'summary_type', 'remove_audio_tags', 'temperature', 'webhook_auth_header_name',
  'webhook_auth_header_value', 'webhook_url', 'custom_topics', 'speech_model', 'topics',
]); // prettier-ignore
const BOOLEAN_PARAMS = ['language_detection', 'speaker_labels', 'punctuate', 'format_text'];
/** Regional English codes the spec lists beside the bare ones. */
const REGIONAL = ['en_us', 'en_uk', 'en_au'];

type Outcome = 'succeed' | 'fail' | 'stuck' | 'download' | 'not_audio' | 'short';

interface EmulatedTranscript {
  id: string;
  audioUrl: string;
  bytes: number;
  speechModels: string[];
  languageCode?: string;
  languageDetection: boolean;
  speakerLabels: boolean;
  status: AssemblyAiTranscriptStatus;
  /** GET answers so far while the transcript was still going. */
  polls: number;
  /** Decided at submission so a transcript's fate does not depend on who polls it. */
  outcome: Outcome;
  error?: string;
  deleted: boolean;
  /** Made once, when the transcript completes. */
  words?: AssemblyAiWord[];
}

const FINAL: readonly AssemblyAiTranscriptStatus[] = ['completed', 'error'];

class AssemblyAiHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The first problem with a POST /v2/transcript body, worded in AssemblyAI's style ("format_text must be a Boolean"). */
function paramsProblem(body: Record<string, unknown>): string | undefined {
  const unknown = Object.keys(body).find((key) => !KNOWN_PARAMS.has(key));
  if (unknown) return `${unknown} is not a valid parameter`;
  if (typeof body.audio_url !== 'string' || body.audio_url.length === 0) return 'audio_url must be a URL';
  const models = body.speech_models;
  if (models === undefined) return 'speech_models is required';
  if (!Array.isArray(models) || models.length === 0 || !models.every(isAssemblyAiSpeechModel)) {
    return `speech_models must be a non-empty list of: ${ASSEMBLYAI_SPEECH_MODELS.join(', ')}`;
  }
  for (const key of BOOLEAN_PARAMS) {
    if (body[key] !== undefined && typeof body[key] !== 'boolean') return `${key} must be a Boolean`;
  }
  const language = body.language_code;
  if (language !== undefined && language !== null) {
    if (typeof language !== 'string' || !(ASSEMBLYAI_LANGUAGES.includes(language) || REGIONAL.includes(language))) {
      return `language_code ${JSON.stringify(language)} is not supported`;
    }
    if (!models.some((m) => modelSpeaks(m, language))) {
      return `The following models are not available in this language: ${models.join(', ')}`;
    }
  }
  return undefined;
}

function modelSpeaks(model: string, language: string): boolean {
  return model === 'universal-2' || UNIVERSAL_3_PRO_LANGUAGES.includes(language.split('_')[0]);
}

/** Made-up words, spread evenly over the audio, speakers taking turns by sentence when labels are asked. */
function makeWords(bytes: number, durationMs: number, speakerLabels: boolean): AssemblyAiWord[] {
  const sentences = [
    `This is a sandbox transcript of ${bytes} bytes of audio.`,
    'No one listened to it; the emulator made these words up.',
  ];
  const tokens = sentences.flatMap((sentence, s) => sentence.split(' ').map((text) => ({ text, s })));
  const step = durationMs / tokens.length;
  return tokens.map(({ text, s }, i) => ({
    text,
    start: Math.round(i * step),
    end: Math.round((i + 1) * step),
    confidence: 0.98,
    speaker: speakerLabels ? String.fromCharCode(65 + (s % 2)) : null,
  }));
}

function utterancesOf(words: AssemblyAiWord[]): AssemblyAiUtterance[] {
  const turns: AssemblyAiUtterance[] = [];
  for (const word of words) {
    const last = turns.at(-1);
    if (last && last.speaker === word.speaker) {
      last.words.push(word);
      last.text += ` ${word.text}`;
      last.end = word.end;
    } else {
      turns.push({
        text: word.text,
        start: word.start,
        end: word.end,
        confidence: 0.98,
        speaker: word.speaker!,
        words: [word],
      });
    }
  }
  return turns;
}

/** Words grouped into captions of at most `chars` characters (a longer word stands alone). */
function captions(words: AssemblyAiWord[], chars: number): { start: number; end: number; text: string }[] {
  const cues: { start: number; end: number; text: string }[] = [];
  for (const word of words) {
    const last = cues.at(-1);
    if (last && last.text.length + 1 + word.text.length <= chars) {
      last.text += ` ${word.text}`;
      last.end = word.end;
    } else {
      cues.push({ start: word.start, end: word.end, text: word.text });
    }
  }
  return cues;
}

function clock(ms: number, separator: ',' | '.', hours: boolean): string {
  const pad = (v: number, width = 2) => String(v).padStart(width, '0');
  const h = Math.floor(ms / 3_600_000);
  const rest = `${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
  return hours || h > 0 ? `${pad(h)}:${rest}` : rest;
}

function srt(cues: { start: number; end: number; text: string }[]): string {
  return cues
    .map((c, i) => `${i + 1}\n${clock(c.start, ',', true)} --> ${clock(c.end, ',', true)}\n${c.text}\n`)
    .join('\n');
}

function vtt(cues: { start: number; end: number; text: string }[]): string {
  const body = cues.map((c) => `${clock(c.start, '.', false)} --> ${clock(c.end, '.', false)}\n${c.text}\n`).join('\n');
  return `WEBVTT\n\n${body}`;
}

/** What a transcript's audio looks like from its first bytes: an HTML page is the classic wrong URL. */
function looksLikeHtml(data: Buffer): boolean {
  return /^\s*<(!doctype|html)/i.test(data.subarray(0, 64).toString('latin1'));
}

/**
 * AssemblyAI pre-recorded speech-to-text emulator (sandbox mode and tests): POST /v2/upload keeps raw bytes and
 * answers an upload_url only it knows; POST /v2/transcript validates its parameters (400 `{error}`) and queues a
 * transcript that GET /v2/transcript/{id} walks through queued → processing (knobs.asyncSteps answers) → completed,
 * with made-up words timed over the audio's length (16 kB a second), utterances by speaker when asked, and SRT/VTT at
 * /v2/transcript/{id}/srt|vtt made from those words. The key alone in the authorization header, AssemblyAI's error
 * bodies, DELETE of finished transcripts only, audio that is missing, not audio or too short ending in `error`, and
 * the shared knobs (failureRate → `error` "Server error", stuckRate → processing forever, rateLimitRate → 429 with
 * Retry-After, latencyMs). Returned unlistened.
 */
export function createAssemblyAiEmulator(opts: AssemblyAiEmulatorOptions): FastifyInstance {
  const { knobs, stats } = opts;
  const apiKey = opts.apiKey ?? SANDBOX_API_KEY;
  const rolls = { rolls: 0 };
  const fates = { rolls: 0 };
  const uploads = new Map<string, Buffer>();
  const transcripts = new Map<string, EmulatedTranscript>();
  const app = Fastify({ logger: false, bodyLimit: MAX_UPLOAD_BYTES, forceCloseConnections: true });

  // Uploads are raw bytes of any type.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_UPLOAD_BYTES }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-sandbox', 'true');
    return payload;
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof AssemblyAiHttpError) {
      return reply
        .code(err.status)
        .headers(err.headers)
        .send({ error: err.message } satisfies AssemblyAiErrorBody);
    }
    const status = err.statusCode ?? 500;
    const message = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'Invalid JSON body' : err.message;
    return reply.code(status).send({ error: status < 500 ? message : SERVER_ERROR } satisfies AssemblyAiErrorBody);
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'Not found' } satisfies AssemblyAiErrorBody));

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route) {
      const body = Buffer.isBuffer(req.body) ? { bytes: req.body.length } : (req.body ?? {});
      stats.count(`${req.method} ${route}`, req.method === 'POST' ? body : undefined);
    }
    if (await clientLeftDuringLatency(reply, knobs.latencyMs)) {
      throw new AssemblyAiHttpError(499, 'client closed the request');
    }
    if (req.headers.authorization !== apiKey) throw new AssemblyAiHttpError(401, UNAUTHORIZED);
    if (knobs.rateLimitRate > 0 && roll(rolls) < knobs.rateLimitRate) {
      throw new AssemblyAiHttpError(429, TOO_MANY, { 'retry-after': '1' });
    }
  });

  const lookup = (id: string): EmulatedTranscript => {
    const transcript = transcripts.get(id);
    if (!transcript) throw new AssemblyAiHttpError(400, LOOKUP_FAILED);
    return transcript;
  };

  const prune = (): void => {
    if (transcripts.size <= MAX_TRANSCRIPTS) return;
    for (const [id, t] of transcripts) {
      if (transcripts.size <= MAX_TRANSCRIPTS) break;
      if (FINAL.includes(t.status)) transcripts.delete(id);
    }
  };

  const durationMs = (t: EmulatedTranscript) => Math.round((t.bytes / AUDIO_BYTES_PER_SECOND) * 1000);

  const view = (t: EmulatedTranscript): AssemblyAiTranscript & Record<string, unknown> => {
    const done = t.status === 'completed' && !t.deleted;
    const words = done ? t.words! : null;
    const language = t.languageCode ?? (t.status === 'completed' ? 'en' : undefined);
    const used = t.status === 'completed' ? t.speechModels.find((m) => modelSpeaks(m, language ?? 'en')) : undefined;
    return {
      id: t.id,
      status: t.status,
      audio_url: t.deleted ? 'http://deleted_by_user' : t.audioUrl,
      text: t.deleted ? 'Deleted by user.' : done ? words!.map((w) => w.text).join(' ') : null,
      words,
      utterances: done && t.speakerLabels ? utterancesOf(words!) : null,
      confidence: done ? 0.98 : null,
      audio_duration: t.status === 'completed' ? Math.max(1, Math.round(durationMs(t) / 1000)) : null,
      ...(language && { language_code: language }),
      language_detection: t.languageDetection,
      language_confidence: t.languageDetection && t.status === 'completed' ? 0.97 : null,
      language_confidence_threshold: null,
      speech_models: t.speechModels,
      ...(used && { speech_model_used: used }),
      speaker_labels: t.speakerLabels,
      punctuate: true,
      format_text: true,
      // Required by the spec, with no function today.
      speech_model: null,
      language_model: 'assemblyai_default',
      acoustic_model: 'assemblyai_default',
      webhook_auth: false,
      auto_highlights: false,
      redact_pii: false,
      summarization: false,
      ...(t.status === 'error' && { error: t.error }),
    };
  };

  app.post('/v2/upload', async (req) => {
    const data = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (data.length === 0) throw new AssemblyAiHttpError(400, 'No file was uploaded: the request body is empty');
    const id = randomUUID();
    uploads.set(id, data);
    if (uploads.size > MAX_UPLOADS) uploads.delete(uploads.keys().next().value!);
    // Like AssemblyAI's cdn.assemblyai.com/upload/<id>: reachable by the transcription service only.
    return { upload_url: `${req.protocol}://${req.host}/upload/${id}` };
  });

  app.post('/v2/transcript', async (req) => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new AssemblyAiHttpError(400, 'The request body must be a JSON object');
    }
    const body = req.body as Record<string, unknown>;
    const problem = paramsProblem(body);
    if (problem) throw new AssemblyAiHttpError(400, problem);
    const audioUrl = body.audio_url as string;
    const uploadId = /\/upload\/([0-9a-f-]{36})$/.exec(audioUrl)?.[1];
    const data = uploadId ? uploads.get(uploadId) : undefined;
    const bytes = data?.length ?? 0;
    let outcome: Outcome = 'succeed';
    // The sandbox has no internet: only its own uploads can be fetched.
    if (!data) outcome = 'download';
    else if (looksLikeHtml(data)) outcome = 'not_audio';
    else if ((bytes / AUDIO_BYTES_PER_SECOND) * 1000 < MIN_AUDIO_MS) outcome = 'short';
    else if (knobs.failureRate > 0 && roll(fates, 0x85ebca6b) < knobs.failureRate) outcome = 'fail';
    else if (knobs.stuckRate > 0 && roll(fates, 0x27d4eb2f) < knobs.stuckRate) outcome = 'stuck';
    const transcript: EmulatedTranscript = {
      id: randomUUID(),
      audioUrl,
      bytes,
      speechModels: body.speech_models as string[],
      languageCode: typeof body.language_code === 'string' ? body.language_code : undefined,
      languageDetection: body.language_detection === true,
      speakerLabels: body.speaker_labels === true,
      status: 'queued',
      polls: 0,
      outcome,
      deleted: false,
    };
    prune();
    transcripts.set(transcript.id, transcript);
    stats.jobStarted();
    return view(transcript);
  });

  const finish = (t: EmulatedTranscript, status: AssemblyAiTranscriptStatus, error?: string): void => {
    t.status = status;
    t.error = error;
    if (status === 'completed') t.words = makeWords(t.bytes, durationMs(t), t.speakerLabels);
    stats.jobEnded();
  };

  /** One poll moves a going transcript one step along its decided path. */
  const advance = (t: EmulatedTranscript): void => {
    if (FINAL.includes(t.status)) return;
    t.polls++;
    // Fetching and probing the file come first: such transcripts fail on their first look.
    if (t.outcome === 'download') {
      return finish(
        t,
        'error',
        `Download error, unable to download ${t.audioUrl}. Please make sure the file exists and is accessible from the internet.`,
      );
    }
    if (t.outcome === 'not_audio') {
      return finish(t, 'error', 'File does not appear to contain audio. File type is text/html (HTML document).');
    }
    if (t.outcome === 'short') return finish(t, 'error', TOO_SHORT);
    if (t.outcome === 'stuck' || t.polls <= Math.max(0, knobs.asyncSteps)) {
      t.status = t.polls === 1 ? 'queued' : 'processing';
      return;
    }
    if (t.outcome === 'fail') return finish(t, 'error', SERVER_ERROR);
    finish(t, 'completed');
  };

  app.get<{ Params: { id: string } }>('/v2/transcript/:id', async (req) => {
    const transcript = lookup(req.params.id);
    advance(transcript);
    return view(transcript);
  });

  app.get<{ Params: { id: string; format: string }; Querystring: { chars_per_caption?: string } }>(
    '/v2/transcript/:id/:format',
    async (req, reply) => {
      const { format } = req.params;
      if (format !== 'srt' && format !== 'vtt') throw new AssemblyAiHttpError(404, 'Not found');
      const transcript = lookup(req.params.id);
      if (transcript.status !== 'completed' || transcript.deleted) {
        throw new AssemblyAiHttpError(400, `Transcript is not completed: its status is ${transcript.status}`);
      }
      const raw = req.query.chars_per_caption;
      const chars = raw === undefined ? DEFAULT_CHARS_PER_CAPTION : Number(raw);
      if (!Number.isInteger(chars) || chars < 1)
        throw new AssemblyAiHttpError(400, 'chars_per_caption must be an Integer');
      const cues = captions(transcript.words!, chars);
      return reply.type('text/plain; charset=utf-8').send(format === 'srt' ? srt(cues) : vtt(cues));
    },
  );

  // Removes a finished transcript's text and its uploaded audio; one still going cannot be deleted.
  app.delete<{ Params: { id: string } }>('/v2/transcript/:id', async (req) => {
    const transcript = lookup(req.params.id);
    if (!FINAL.includes(transcript.status)) {
      throw new AssemblyAiHttpError(
        400,
        `Transcript is still ${transcript.status}: it can be deleted once its status is completed or error`,
      );
    }
    transcript.deleted = true;
    const uploadId = /\/upload\/([0-9a-f-]{36})$/.exec(transcript.audioUrl)?.[1];
    if (uploadId) uploads.delete(uploadId);
    return view(transcript);
  });

  return app;
}
