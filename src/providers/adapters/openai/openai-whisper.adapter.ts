import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Injectable, Optional } from '@nestjs/common';
// undici's own FormData: Node 20's global one (from its bundled undici) makes undici 7's request() fail while
// streaming the body ("action is not a function").
import { FormData } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { MediaUrlGuard } from '../../../security/url-guard';
import { mediaUrlGuard } from '../../../security/security.module';
import { downloadMedia } from '../../media-download';
import { StoredMedia } from '../../stored-media';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { HttpResponse, providerRequest } from '../../provider-http';
import { openAiFailure } from './openai-images.adapter';
import {
  TRANSCRIPTION_MODELS,
  TranscriptionFormat,
  TranscriptionJson,
  TranscriptionModel,
  TranscriptionVerboseJson,
} from './openai.types';

/** A transcription task's input (AudioTranscribeDto). */
type TranscribeInput = TaskInputOf<TaskType.AudioTranscription>;

/** OpenAI's upload limit. */
export const WHISPER_MAX_BYTES = 25 * 1024 * 1024;

/** Published price per minute (PROVIDERS.md §2; gpt-4o-transcribe is token-billed, ≈ whisper-1). */
const PRICE_PER_MINUTE: Record<TranscriptionModel, number> = {
  'whisper-1': 0.006,
  'gpt-4o-transcribe': 0.006,
  'gpt-4o-mini-transcribe': 0.003,
};

/** Compressed speech runs about 128 kbit/s: the duration guess when the answer does not say. */
const BYTES_PER_SECOND = 16_000;

const TRANSCRIPT_FILES: Record<TranscriptionFormat, { contentType: string; filename: string }> = {
  json: { contentType: 'application/json', filename: 'transcript.json' },
  verbose_json: { contentType: 'application/json', filename: 'transcript.json' },
  text: { contentType: 'text/plain', filename: 'transcript.txt' },
  srt: { contentType: 'application/x-subrip', filename: 'transcript.srt' },
  vtt: { contentType: 'text/vtt', filename: 'transcript.vtt' },
};

/** OpenAI tells the format by the file name's extension: name the upload after its content type when it has none. */
const EXTENSIONS: Record<string, string> = {
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/wave': 'wav',
  'audio/ogg': 'ogg',
  'audio/webm': 'webm',
  'audio/flac': 'flac',
  'audio/x-flac': 'flac',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/m4a': 'm4a',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
};
const AUDIO_EXTENSIONS = new Set(['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']);

function isModel(model: string): model is TranscriptionModel {
  return (TRANSCRIPTION_MODELS as readonly string[]).includes(model);
}

/** The spoken text of an SRT or WebVTT document: cue numbers/identifiers, timings, headers and tags removed. */
export function subtitleText(document: string): string {
  const texts: string[] = [];
  for (const block of document.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) {
    const lines = block.split('\n');
    const timing = lines.findIndex((line) => line.includes('-->'));
    if (timing < 0) continue; // WEBVTT header, NOTE, STYLE or REGION block
    for (const line of lines.slice(timing + 1)) {
      const text = line.replace(/<[^>]*>/g, '').trim();
      if (text) texts.push(text);
    }
  }
  return texts.join(' ');
}

/**
 * OpenAI speech-to-text (whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe), synchronous: the audio is
 * downloaded from `audio_url` (≤ 25 MB, OpenAI's limit) and uploaded as multipart; the transcript comes back in
 * the requested format and is kept as a file, its plain text in the output.
 */
@Injectable()
export class OpenAiWhisperAdapter extends MediaProvider<TaskType.AudioTranscription> {
  readonly name = 'openai-whisper';
  readonly taskTypes = [TaskType.AudioTranscription] as const;
  override readonly qualityScore = 0.85;
  override readonly costModel = 'whisper-1 $0.006/min, gpt-4o-mini-transcribe $0.003/min';

  constructor(
    private readonly config: AppConfig,
    // The audio is fetched on the user's behalf: through the URL guard.
    @Optional() private readonly guard: MediaUrlGuard = mediaUrlGuard(config),
    // upload:<id> inputs are read from storage.
    @Optional() private readonly uploads?: StoredMedia,
  ) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.openai.apiKey;
  }

  override baseUrl(): string {
    return this.config.openai.baseUrl;
  }

  override validate(task: TaskRequest<TaskType.AudioTranscription>): FieldProblem[] {
    const input = withDefaults(task.input);
    const problems: FieldProblem[] = [];
    if (!isModel(input.model)) {
      problems.push(
        fieldProblem(
          'model',
          `${this.name} cannot serve "${input.model}" (it runs ${TRANSCRIPTION_MODELS.join(', ')})`,
        ),
      );
    }
    if (input.model.startsWith('gpt-4o') && input.response_format !== 'json') {
      problems.push(fieldProblem('response_format', `${input.model} returns json only`));
    }
    if (input.speaker_labels) problems.push(fieldProblem('speaker_labels', `${this.name} does not label speakers`));
    return problems;
  }

  /** The floor: one minute of audio (the length is known only once downloaded). */
  override estimateCost(task: TaskRequest<TaskType.AudioTranscription>): Cost {
    const { model } = withDefaults(task.input);
    return { amount: isModel(model) ? PRICE_PER_MINUTE[model] : 0, currency: 'USD' };
  }

  async start(ctx: ProviderContext<TaskType.AudioTranscription>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InputInvalid);
    const input = withDefaults(ctx.input);
    const model = input.model as TranscriptionModel;
    const format: TranscriptionFormat = input.response_format;
    const timeoutMs = this.config.providerHttpTimeoutMs;

    // Streamed to disk, then read back for the upload: Whisper takes at most 25 MB, which bounds what is held.
    const dir = await mkdtemp(join(tmpdir(), 'media-whisper-'));
    let media;
    let audio;
    try {
      media = await downloadMedia(input.audio_url, join(dir, 'audio'), {
        guard: this.guard,
        uploads: this.uploads,
        maxBytes: WHISPER_MAX_BYTES,
        timeoutMs,
        signal: ctx.signal,
      });
      audio = await readFile(media.file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    ctx.reportProgress(0.2);

    const contentType = media.contentType.split(';')[0].trim().toLowerCase();
    const form = new FormData();
    form.append('file', new Blob([audio], { type: contentType }), uploadName(media.filename, contentType));
    form.append('model', model);
    if (input.language) form.append('language', input.language);
    form.append('response_format', format);

    const { apiKey, baseUrl } = this.config.openai;
    const res = await providerRequest(this.name, {
      method: 'POST',
      url: `${baseUrl}/audio/transcriptions`,
      headers: { authorization: `Bearer ${apiKey}` },
      body: form,
      timeoutMs,
      signal: ctx.signal,
    });
    if (res.status < 200 || res.status >= 300) throw openAiFailure(this.name, res, apiKey);

    const { text, language, durationS } = this.parse(res, format);
    const seconds = durationS ?? media.size / BYTES_PER_SECOND;
    const minutes = Math.max(1, Math.ceil(seconds / 60));
    const file = TRANSCRIPT_FILES[format];
    return {
      kind: 'completed',
      output: {
        artifacts: [{ contentType: file.contentType, data: res.body, filename: file.filename }],
        data: {
          text,
          format,
          ...((language ?? input.language) && { language: language ?? input.language }),
          ...(durationS !== undefined && { duration_s: durationS }),
        },
      },
      cost: { amount: Math.round(PRICE_PER_MINUTE[model] * minutes * 1e6) / 1e6, currency: 'USD' },
    };
  }

  /** The transcript text and, when the answer says, the language and the audio's length. */
  private parse(
    res: HttpResponse,
    format: TranscriptionFormat,
  ): { text: string; language?: string; durationS?: number } {
    switch (format) {
      case 'json': {
        const body = res.json<TranscriptionJson>();
        if (typeof body?.text !== 'string') throw this.badResponse('a JSON transcript without text');
        // whisper-1 reports the billed seconds; gpt-4o models report tokens.
        const durationS = body.usage?.type === 'duration' ? body.usage.seconds : undefined;
        return { text: body.text, durationS };
      }
      case 'verbose_json': {
        const body = res.json<TranscriptionVerboseJson>();
        if (typeof body?.text !== 'string') throw this.badResponse('a JSON transcript without text');
        return {
          text: body.text,
          language: typeof body.language === 'string' ? body.language : undefined,
          durationS: typeof body.duration === 'number' ? body.duration : undefined,
        };
      }
      case 'text':
        return { text: res.text().trim() };
      case 'srt':
      case 'vtt':
        return { text: subtitleText(res.text()) };
    }
  }

  private badResponse(what: string): ProviderError {
    return ProviderError.transient(ProviderErrorCode.BadResponse, `${this.name} answered ${what}`);
  }
}

/** The input with the DTO's defaults, and OpenAI's default model. */
function withDefaults(input: TranscribeInput) {
  return {
    ...input,
    model: input.model || 'whisper-1',
    response_format: input.response_format ?? 'json',
  };
}

/** A file name OpenAI recognises: the downloaded name, with an extension from the content type when it lacks one. */
function uploadName(filename: string, contentType: string): string {
  const extension = filename.includes('.') ? filename.split('.').pop()!.toLowerCase() : '';
  if (AUDIO_EXTENSIONS.has(extension)) return filename;
  const guessed = EXTENSIONS[contentType];
  return guessed ? `${filename}.${guessed}` : filename;
}
