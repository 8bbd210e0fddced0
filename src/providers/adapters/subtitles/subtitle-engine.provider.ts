import { Injectable } from '@nestjs/common';
import { TaskErrorCode, TaskType } from '../../../tasks/task.enums';
import { MediaProvider, ProviderContext, ProviderError, StartOutcome } from '../../provider.port';
import {
  buildCues,
  cuesFromSegments,
  ManualSegment,
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

interface SubtitleInput {
  text?: string;
  segments?: ManualSegment[];
  format?: SubtitleFormat;
  timing_mode?: 'auto' | 'manual';
  target_language?: string;
  max_chars_per_line?: number;
  max_lines?: number;
  chars_per_second?: number;
}

/**
 * The built-in subtitle engine: text → timed cues → SRT, WebVTT or ASS, in process, at no cost. It lays out and
 * times the text it is given; it does not translate (`target_language` labels the output).
 */
@Injectable()
export class SubtitleEngineProvider extends MediaProvider {
  readonly name = 'subtitle-engine';
  readonly taskTypes = [TaskType.SubtitleGeneration] as const;
  override readonly qualityScore = 0.6;
  override readonly costModel = 'free (built in)';

  isConfigured(): boolean {
    return true;
  }

  async start({ input, signal }: ProviderContext): Promise<StartOutcome> {
    signal.throwIfAborted();
    const request = input as SubtitleInput;
    const format = request.format ?? 'srt';
    const timing: SubtitleTimingOptions = {
      maxCharsPerLine: request.max_chars_per_line,
      maxLines: request.max_lines,
      charsPerSecond: request.chars_per_second,
    };
    let cues: SubtitleCue[];
    try {
      cues =
        request.timing_mode === 'manual'
          ? cuesFromSegments(request.segments ?? [], timing)
          : buildCues(request.text ?? '', timing);
    } catch (err) {
      if (err instanceof SubtitleInputError) throw ProviderError.permanent(TaskErrorCode.InvalidInput, err.message);
      throw err;
    }
    let content: string;
    try {
      content = renderSubtitles(format, cues, { language: request.target_language });
    } catch (err) {
      if (err instanceof SubtitleInputError) throw ProviderError.permanent(TaskErrorCode.InvalidInput, err.message);
      throw err;
    }
    return {
      kind: 'completed',
      output: {
        // Small text: returned inline as well as kept as a file.
        artifacts: [
          { contentType: CONTENT_TYPES[format], data: Buffer.from(content), filename: `subtitles.${format}` },
        ],
        data: {
          format,
          content_type: CONTENT_TYPES[format],
          content,
          size_bytes: Buffer.byteLength(content),
          cue_count: cues.length,
          duration_ms: cues.length ? cues[cues.length - 1].endMs : 0,
          language: request.target_language ?? null,
        },
      },
      cost: { amount: 0, currency: 'USD' },
    };
  }
}
