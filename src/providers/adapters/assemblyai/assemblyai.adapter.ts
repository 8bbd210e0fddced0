import { Injectable, Optional } from '@nestjs/common';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AppConfig } from '../../../config/app-config';
import { UrlGuard } from '../../../security/url-guard';
import { FieldProblem } from '../../../common/domain-exception';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { downloadMedia } from '../../media-download';
import { StoredMedia } from '../../stored-media';
import { classifyStatus, HttpResponse, providerRequest } from '../../provider-http';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  PollOutcome,
  ProviderArtifact,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  ProviderJobRef,
  StartOutcome,
} from '../../provider.port';
import {
  ASSEMBLYAI_LANGUAGES,
  ASSEMBLYAI_POLL_MS,
  ASSEMBLYAI_PRICE_PER_HOUR,
  ASSEMBLYAI_SPEAKER_LABELS_PER_HOUR,
  ASSEMBLYAI_SPEECH_MODELS,
  AssemblyAiErrorBody,
  AssemblyAiJob,
  AssemblyAiSpeechModel,
  AssemblyAiTranscript,
  AssemblyAiTranscriptParams,
  AssemblyAiUploadedFile,
  isAssemblyAiSpeechModel,
  UNIVERSAL_3_PRO_LANGUAGES,
} from './assemblyai.types';

/**
 * The platform downloads the audio to a temp file and streams it up from there, so memory stays flat; the cap bounds
 * the worker's disk and stays under AssemblyAI's own limit of 2.2 GB per upload.
 */
export const ASSEMBLYAI_MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024;

const FORMATS = ['json', 'verbose_json', 'text', 'srt', 'vtt'] as const;
type Format = (typeof FORMATS)[number];

const TRANSCRIPT_FILES: Record<Format, { contentType: string; filename: string }> = {
  json: { contentType: 'application/json', filename: 'transcript.json' },
  verbose_json: { contentType: 'application/json', filename: 'transcript.json' },
  text: { contentType: 'text/plain', filename: 'transcript.txt' },
  srt: { contentType: 'application/x-subrip', filename: 'transcript.srt' },
  vtt: { contentType: 'text/vtt', filename: 'transcript.vtt' },
};

/** Compressed speech runs about 128 kbit/s: the duration guess when the transcript does not say. */
const BYTES_PER_SECOND = 16_000;

/** Transcript JSON can be large (a word list of hours of audio), subtitles less so. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

function isFormat(value: string): value is Format {
  return (FORMATS as readonly string[]).includes(value);
}

/** A transcription task's input with the DTO's defaults. */
function fieldsOf(input: TaskInputOf<TaskType.AudioTranscription>) {
  return {
    audio_url: input.audio_url,
    language: input.language || undefined,
    model: input.model || undefined,
    format: input.response_format ?? 'json',
    speaker_labels: input.speaker_labels === true,
  };
}

/** The task's model alone, or AssemblyAI's best first and Universal-2 for the languages Universal-3 Pro lacks. */
function speechModelsOf(model: string | undefined): AssemblyAiSpeechModel[] {
  return isAssemblyAiSpeechModel(model) ? [model] : [...ASSEMBLYAI_SPEECH_MODELS];
}

/** AssemblyAI's error bodies are `{error: "…"}`; anything else is passed on as (short) text. */
function errorMessage(res: HttpResponse): string {
  try {
    const body = JSON.parse(res.text()) as AssemblyAiErrorBody;
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: fall through to the raw text
  }
  return res.text().slice(0, 300) || `HTTP ${res.status}`;
}

/** A transcript id AssemblyAI does not know: a 404, or the 400 its docs show ("transcript id not found"). */
function isUnknownTranscript(res: HttpResponse): boolean {
  return res.status === 404 || (res.status === 400 && /not found/i.test(errorMessage(res)));
}

/**
 * AssemblyAI pre-recorded speech-to-text (Universal-3 Pro, Universal-2), asynchronous. The platform downloads
 * `audio_url` itself, through its URL guard, and uploads the bytes (POST /v2/upload), so AssemblyAI never needs to
 * reach the user's URL; then POST /v2/transcript, and `poll` reads GET /v2/transcript/{id} (queued → processing →
 * completed | error), fetching /srt or /vtt when that format was asked. No worker is held meanwhile.
 */
@Injectable()
export class AssemblyAiAdapter extends MediaProvider<TaskType.AudioTranscription> {
  readonly name = 'assemblyai';
  readonly taskTypes = [TaskType.AudioTranscription] as const;
  // As accurate as Whisper by AssemblyAI's and independent benchmarks, and cheaper: `quality` ties go to the cost.
  override readonly qualityScore = 0.85;
  override readonly costModel =
    'per second of audio: universal-3-pro $0.21/h, universal-2 $0.15/h; speaker labels +$0.02/h';

  constructor(
    private readonly config: AppConfig,
    // The audio is fetched on the user's behalf: through the URL guard.
    @Optional() private readonly guard: UrlGuard = new UrlGuard(config.allowPrivateAddresses),
    // upload:<id> inputs are read from storage.
    @Optional() private readonly uploads?: StoredMedia,
  ) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.assemblyai.apiKey;
  }

  override baseUrl(): string {
    return this.config.assemblyai.baseUrl;
  }

  override validate(task: TaskRequest<TaskType.AudioTranscription>): FieldProblem[] {
    const input = fieldsOf(task.input);
    const problems: FieldProblem[] = [];
    if (input.model !== undefined && !isAssemblyAiSpeechModel(input.model)) {
      problems.push(
        fieldProblem(
          'model',
          `${this.name} cannot serve "${input.model}" (it runs ${ASSEMBLYAI_SPEECH_MODELS.join(', ')})`,
        ),
      );
    }
    if (input.language !== undefined) {
      if (!ASSEMBLYAI_LANGUAGES.includes(input.language)) {
        problems.push(fieldProblem('language', `${this.name} cannot transcribe "${input.language}"`));
      } else if (input.model === 'universal-3-pro' && !UNIVERSAL_3_PRO_LANGUAGES.includes(input.language)) {
        problems.push(
          fieldProblem('language', `universal-3-pro transcribes ${UNIVERSAL_3_PRO_LANGUAGES.join(', ')} only`),
        );
      }
    }
    return problems;
  }

  /** The floor: one minute of audio on the first model tried (the length is known only once transcribed). */
  override estimateCost(task: TaskRequest<TaskType.AudioTranscription>): Cost {
    const input = fieldsOf(task.input);
    return this.price(speechModelsOf(input.model)[0], 60, input.speaker_labels);
  }

  async start(ctx: ProviderContext<TaskType.AudioTranscription>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InputInvalid);
    const input = fieldsOf(ctx.input);
    const timeoutMs = this.config.providerHttpTimeoutMs;

    // Streamed to a temp file, then from it to AssemblyAI: memory stays flat whatever the audio's size.
    const dir = await mkdtemp(join(tmpdir(), 'media-assemblyai-'));
    let uploaded: HttpResponse;
    let size: number;
    try {
      const media = await downloadMedia(input.audio_url, join(dir, 'audio'), {
        guard: this.guard,
        uploads: this.uploads,
        maxBytes: ASSEMBLYAI_MAX_UPLOAD_BYTES,
        timeoutMs,
        signal: ctx.signal,
      });
      size = media.size;
      ctx.reportProgress(0.1);
      // At least 1 MB/s on top of the usual deadline: a large file takes a while to send.
      const uploadTimeoutMs = timeoutMs + Math.ceil(size / 1_000_000) * 1000;
      uploaded = await this.call('POST', '/v2/upload', ctx.signal, createReadStream(media.file), uploadTimeoutMs);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (uploaded.status < 200 || uploaded.status >= 300) throw this.failure(uploaded);
    const { upload_url: audioUrl } = uploaded.json<AssemblyAiUploadedFile>();
    if (typeof audioUrl !== 'string' || audioUrl.length === 0) throw this.badResponse('an upload without upload_url');
    ctx.reportProgress(0.2);

    const params: AssemblyAiTranscriptParams = {
      audio_url: audioUrl,
      speech_models: speechModelsOf(input.model),
      // No language given: let AssemblyAI detect it (Whisper does), rather than assume its default, en_us.
      ...(input.language ? { language_code: input.language } : { language_detection: true }),
      ...(input.speaker_labels ? { speaker_labels: true } : {}),
    };
    const created = await this.call('POST', '/v2/transcript', ctx.signal, params);
    if (created.status < 200 || created.status >= 300) throw this.failure(created);
    const { id } = created.json<AssemblyAiTranscript>();
    if (typeof id !== 'string' || id.length === 0) throw this.badResponse('a transcript without an id');
    const job: AssemblyAiJob = {
      id,
      format: input.format,
      speech_models: params.speech_models,
      speaker_labels: input.speaker_labels,
      bytes: size,
    };
    return { kind: 'submitted', job, pollAfterMs: ASSEMBLYAI_POLL_MS };
  }

  override async poll(ctx: ProviderContext<TaskType.AudioTranscription>, ref: ProviderJobRef): Promise<PollOutcome> {
    const job = this.jobFrom(ctx, ref);
    const res = await this.call('GET', `/v2/transcript/${encodeURIComponent(job.id)}`, ctx.signal);
    if (isUnknownTranscript(res)) {
      throw ProviderError.permanent(
        ProviderErrorCode.NotFound,
        `job expired: ${this.name} has no transcript ${job.id}`,
        res.status,
      );
    }
    if (res.status < 200 || res.status >= 300) throw this.failure(res);
    const transcript = res.json<AssemblyAiTranscript>();
    switch (transcript.status) {
      case 'queued':
      case 'processing':
        return { kind: 'running', pollAfterMs: ASSEMBLYAI_POLL_MS };
      case 'completed':
        return this.completed(ctx, job, transcript, res);
      case 'error':
        throw this.transcriptFailure(transcript.error);
      default: {
        const status = String((transcript as { status?: unknown }).status);
        throw this.badResponse(`unknown transcript status ${status}`);
      }
    }
  }

  /**
   * DELETE removes a finished transcript and its uploaded audio. AssemblyAI cannot stop one still queued or
   * processing (it answers 400): that one runs to its end at AssemblyAI, and nothing here waits for it.
   */
  override async cancel(ref: ProviderJobRef): Promise<void> {
    const res = await this.call('DELETE', `/v2/transcript/${encodeURIComponent(ref.id)}`);
    if (res.status === 400 || isUnknownTranscript(res) || (res.status >= 200 && res.status < 300)) return;
    throw this.failure(res);
  }

  private async completed(
    ctx: ProviderContext<TaskType.AudioTranscription>,
    job: AssemblyAiJob,
    transcript: AssemblyAiTranscript,
    res: HttpResponse,
  ): Promise<PollOutcome> {
    if (typeof transcript.text !== 'string') throw this.badResponse('a completed transcript without text');
    const format = isFormat(job.format) ? job.format : 'json';
    let body: Buffer;
    if (format === 'srt' || format === 'vtt') {
      const path = `/v2/transcript/${encodeURIComponent(job.id)}/${format}`;
      const subtitles = await this.call('GET', path, ctx.signal);
      if (subtitles.status < 200 || subtitles.status >= 300) throw this.failure(subtitles);
      body = subtitles.body;
    } else if (format === 'text') {
      body = Buffer.from(transcript.text, 'utf8');
    } else {
      // The transcript as AssemblyAI returns it: words with times and confidences, utterances by speaker.
      body = res.body;
    }
    const file = TRANSCRIPT_FILES[format];
    const artifact: ProviderArtifact = { contentType: file.contentType, data: body, filename: file.filename };

    const seconds =
      typeof transcript.audio_duration === 'number' ? transcript.audio_duration : (job.bytes ?? 0) / BYTES_PER_SECOND;
    const used = isAssemblyAiSpeechModel(transcript.speech_model_used)
      ? transcript.speech_model_used
      : (job.speech_models.find(isAssemblyAiSpeechModel) ?? ASSEMBLYAI_SPEECH_MODELS[0]);
    const utterances = job.speaker_labels && Array.isArray(transcript.utterances) ? transcript.utterances : undefined;
    return {
      kind: 'completed',
      output: {
        artifacts: [artifact],
        data: {
          text: transcript.text,
          format,
          model: used,
          assemblyai_transcript_id: transcript.id,
          ...(transcript.language_code && { language: transcript.language_code }),
          ...(typeof transcript.audio_duration === 'number' && { duration_s: transcript.audio_duration }),
          ...(utterances && {
            utterances: utterances.map((u) => ({
              speaker: u.speaker,
              start_s: u.start / 1000,
              end_s: u.end / 1000,
              text: u.text,
            })),
          }),
        },
      },
      cost: this.price(used, seconds, job.speaker_labels),
    };
  }

  /** The stored job, completed from the task's input should it predate a field (re-attach after a restart). */
  private jobFrom(ctx: ProviderContext<TaskType.AudioTranscription>, ref: ProviderJobRef): AssemblyAiJob {
    const input = fieldsOf(ctx.input);
    return {
      ...ref,
      id: ref.id,
      format: typeof ref.format === 'string' ? ref.format : input.format,
      speech_models: Array.isArray(ref.speech_models)
        ? ref.speech_models.filter((m): m is string => typeof m === 'string')
        : speechModelsOf(input.model),
      speaker_labels: typeof ref.speaker_labels === 'boolean' ? ref.speaker_labels : input.speaker_labels,
      bytes: typeof ref.bytes === 'number' ? ref.bytes : undefined,
    };
  }

  /** Billed to the second at the model's hourly rate, plus the speaker labels add-on. */
  private price(model: AssemblyAiSpeechModel, seconds: number, speakerLabels: boolean): Cost {
    const perHour = ASSEMBLYAI_PRICE_PER_HOUR[model] + (speakerLabels ? ASSEMBLYAI_SPEAKER_LABELS_PER_HOUR : 0);
    return { amount: Math.round(((perHour * seconds) / 3600) * 1e6) / 1e6, currency: 'USD' };
  }

  /** A transcript that ended in `error`: AssemblyAI's reason decides whether trying again can help. */
  private transcriptFailure(reason: string | undefined): ProviderError {
    const message = `${this.name} transcript failed: ${reason ?? 'no reason given'}`;
    if (/download error|unable to (access|download)/i.test(reason ?? '')) {
      return ProviderError.permanent(ProviderErrorCode.InputUnreachable, message);
    }
    if (/does not appear to contain audio|too short|unsupported|corrupt/i.test(reason ?? '')) {
      return ProviderError.permanent(ProviderErrorCode.InputInvalid, message);
    }
    // AssemblyAI's advice for a server error during processing is to submit the file again.
    if (/server error|internal error|try again/i.test(reason ?? '')) {
      return ProviderError.transient(ProviderErrorCode.Unavailable, message);
    }
    return ProviderError.permanent(ProviderErrorCode.JobFailed, message);
  }

  private failure(res: HttpResponse): ProviderError {
    return classifyStatus(this.name, res, errorMessage(res));
  }

  private badResponse(what: string): ProviderError {
    return ProviderError.transient(ProviderErrorCode.BadResponse, `${this.name} answered ${what}`);
  }

  private async call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    signal?: AbortSignal,
    body?: Readable | AssemblyAiTranscriptParams,
    timeoutMs = this.config.providerHttpTimeoutMs,
  ): Promise<HttpResponse> {
    const { apiKey, baseUrl } = this.config.assemblyai;
    if (!apiKey) throw ProviderError.permanent(ProviderErrorCode.AuthFailed, `${this.name} has no API key configured`);
    // The key itself, not "Bearer <key>": AssemblyAI's own SDKs send it so.
    const headers: Record<string, string> = { authorization: apiKey };
    if (body instanceof Readable) headers['content-type'] = 'application/octet-stream';
    else if (body !== undefined) headers['content-type'] = 'application/json';
    return providerRequest(this.name, {
      method,
      url: `${baseUrl}${path}`,
      headers,
      body: body === undefined || body instanceof Readable ? body : JSON.stringify(body),
      timeoutMs,
      signal,
      maxBytes: MAX_RESPONSE_BYTES,
    });
  }
}
