import { Injectable, Optional } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskErrorCode, TaskType } from '../../../tasks/task.enums';
import {
  fieldProblem,
  MediaProvider,
  ProviderContext,
  ProviderError,
  ProviderOutput,
  StartOutcome,
} from '../../provider.port';
import {
  buildCues,
  cuesFromSegments,
  renderSubtitles,
  SubtitleCue,
  SubtitleFormat,
  SubtitleInputError,
  SubtitleTimingOptions,
} from './subtitle-engine';

const CONTENT_TYPES: Record<SubtitleFormat, string> = {
  srt: 'application/x-subrip',
  vtt: 'text/vtt',
  ass: 'text/x-ssa',
};

/** A subtitle task's input (SubtitleGenerateDto). */
export type SubtitleInput = TaskInputOf<TaskType.SubtitleGeneration>;

/** The primary language of a BCP-47 tag, lower-cased: "pt-BR" → "pt". */
export function primaryLanguage(language: string): string {
  return language.split('-')[0].toLowerCase();
}

/**
 * Whether a subtitle task asks for a translation: a `target_language` and either no `source_language` (the text's
 * language is then told by the translator) or one of another primary language ("pt" and "pt-BR" are the same).
 */
export function translationAsked(input: SubtitleInput): boolean {
  const { target_language: target, source_language: source } = input;
  if (!target) return false;
  return !source || primaryLanguage(source) !== primaryLanguage(target);
}

export function timingOf(request: SubtitleInput): SubtitleTimingOptions {
  return {
    maxCharsPerLine: request.max_chars_per_line,
    maxLines: request.max_lines,
    charsPerSecond: request.chars_per_second,
  };
}

/** Runs one step of the engine, turning its input errors into the task's permanent `invalid_input`. */
export function engineStep<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof SubtitleInputError) throw ProviderError.permanent(TaskErrorCode.InvalidInput, err.message);
    throw err;
  }
}

/** The task's cues: timed by reading speed from `text` (auto), or with the times of its `segments` (manual). */
export function cuesOf(request: SubtitleInput): SubtitleCue[] {
  const timing = timingOf(request);
  return engineStep(() =>
    request.timing_mode === 'manual'
      ? cuesFromSegments(request.segments ?? [], timing)
      : buildCues(request.text ?? '', timing),
  );
}

/** Cues rendered in the task's format: kept as a file, and returned inline (subtitles are small text). */
export function subtitleOutput(
  request: SubtitleInput,
  cues: SubtitleCue[],
  extra: Record<string, unknown> = {},
): ProviderOutput {
  const format = request.format ?? 'srt';
  const language = request.target_language ?? request.source_language;
  const content = engineStep(() => renderSubtitles(format, cues, { language }));
  return {
    artifacts: [{ contentType: CONTENT_TYPES[format], data: Buffer.from(content), filename: `subtitles.${format}` }],
    data: {
      format,
      content_type: CONTENT_TYPES[format],
      content,
      size_bytes: Buffer.byteLength(content),
      cue_count: cues.length,
      duration_ms: cues.length ? cues[cues.length - 1].endMs : 0,
      language: language ?? null,
      ...extra,
    },
  };
}

/**
 * The built-in subtitle engine: text → timed cues → SRT, WebVTT or ASS, in process, at no cost. It lays out and
 * times the text it is given and does not translate. A task that names a `source_language` other than its
 * `target_language` is refused here, so routing hands it to a translating provider (openai-subtitles). With
 * `target_language` alone the text's language is unknown: when a translator is configured (OPENAI_API_KEY) the engine
 * leaves the task to it; without one, `target_language` is the label it always was and the engine runs the task.
 */
@Injectable()
export class SubtitleEngineProvider extends MediaProvider<TaskType.SubtitleGeneration> {
  readonly name = 'subtitle-engine';
  readonly taskTypes = [TaskType.SubtitleGeneration] as const;
  override readonly qualityScore = 0.6;
  override readonly costModel = 'free (built in)';

  constructor(@Optional() private readonly config?: AppConfig) {
    super();
  }

  isConfigured(): boolean {
    return true;
  }

  override validate({ input }: TaskRequest<TaskType.SubtitleGeneration>): FieldProblem[] {
    if (!translationAsked(input)) return [];
    const { source_language: source, target_language: target } = input;
    if (!source && !this.config?.openai.apiKey) return [];
    return [
      fieldProblem(
        'target_language',
        source
          ? `${this.name} does not translate (${source} → ${target})`
          : `${this.name} does not translate; to label the text without translating it, send source_language equal to target_language`,
      ),
    ];
  }

  async start({ input, signal }: ProviderContext<TaskType.SubtitleGeneration>): Promise<StartOutcome> {
    signal.throwIfAborted();
    const cues = cuesOf(input);
    return { kind: 'completed', output: subtitleOutput(input, cues), cost: { amount: 0, currency: 'USD' } };
  }
}
