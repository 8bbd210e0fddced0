import { Injectable } from '@nestjs/common';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { providerRequest } from '../../provider-http';
import { cuesFromSegments, ManualSegment } from '../subtitles/subtitle-engine';
import {
  cuesOf,
  engineStep,
  primaryLanguage,
  subtitleOutput,
  timingOf,
  translationAsked,
} from '../subtitles/subtitle-engine.provider';
import { openAiFailure } from './openai-images.adapter';
import {
  ChatCompletion,
  CompletionUsage,
  CreateChatCompletionRequest,
  SubtitleTranslationAnswer,
  SubtitleTranslationRequest,
} from './openai.types';

/** One call translates at most this many cues and characters, so its answer stays well inside any model's output. */
const MAX_CUES_PER_CALL = 60;
const MAX_CHARS_PER_CALL = 6000;
/** Calls of one task in flight at once (a long text is several calls). */
const PARALLEL_CALLS = 3;

/**
 * Published price per million tokens (input, output), from copies of OpenAI's pricing page (docs/providers.md).
 * A model not listed here runs, but its task's cost stays unknown.
 */
const PRICES: Record<string, { input: number; output: number }> = {
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-5.4-mini': { input: 0.75, output: 4.5 },
};
const ESTIMATE_PRICE = PRICES['gpt-4.1-mini'];
/** Tokens of the instructions and JSON framing of one call, for the estimate. */
const CALL_OVERHEAD_TOKENS = 300;

const INSTRUCTIONS = [
  'You translate subtitles.',
  'The user message is JSON: {"target_language", "source_language" (null: tell it from the text), "cues": [{"id", "text"}]}.',
  'Translate the text of each cue into target_language on its own, keeping its meaning and tone, and a length close to',
  'the original so it can be read in the same time on screen.',
  'Answer exactly one cue for each cue given, with the same id, in the same order: never merge, split, drop or add cues.',
  'Keep names, numbers and markup as they are. Text already in target_language is returned unchanged.',
  'Answer source_language as the ISO 639-1 code of the original text (for example "en").',
].join(' ');

const ANSWER_SCHEMA = {
  type: 'object',
  properties: {
    source_language: { type: 'string' },
    cues: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'integer' }, text: { type: 'string' } },
        required: ['id', 'text'],
        additionalProperties: false,
      },
    },
  },
  required: ['source_language', 'cues'],
  additionalProperties: false,
};

type Unit = { id: number; text: string };

/** The model's price: a dated snapshot ("gpt-4.1-mini-2025-04-14") costs what its alias does. */
function priceOf(model: string): { input: number; output: number } | undefined {
  return PRICES[model] ?? PRICES[model.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
}

/** Cues to translate, in calls of bounded size. */
function batches(units: Unit[]): Unit[][] {
  const out: Unit[][] = [];
  let current: Unit[] = [];
  let chars = 0;
  for (const unit of units) {
    if (current.length && (current.length >= MAX_CUES_PER_CALL || chars + unit.text.length > MAX_CHARS_PER_CALL)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(unit);
    chars += unit.text.length;
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * Subtitles in another language through OpenAI's chat completions: the built-in engine cuts and times the text
 * first, the cues go to the model as a numbered JSON list with a strict JSON-schema answer, each translation goes
 * back into its cue's time, and the engine lays the result out (line breaks, long cues shared out). Runs only when a
 * translation is asked (`target_language` other than the text's); the engine alone does the rest.
 */
@Injectable()
export class OpenAiSubtitlesAdapter extends MediaProvider<TaskType.SubtitleGeneration> {
  readonly name = 'openai-subtitles';
  readonly taskTypes = [TaskType.SubtitleGeneration] as const;
  override readonly qualityScore = 0.8;
  override readonly costModel: string;

  constructor(private readonly config: AppConfig) {
    super();
    const model = config.openai.subtitleModel;
    const price = priceOf(model);
    this.costModel = price
      ? `${model}: $${price.input} per 1M input tokens, $${price.output} per 1M output tokens`
      : `${model}: by tokens (price not known here)`;
  }

  isConfigured(): boolean {
    return !!this.config.openai.apiKey;
  }

  override baseUrl(): string {
    return this.config.openai.baseUrl;
  }

  override validate({ input }: TaskRequest<TaskType.SubtitleGeneration>): FieldProblem[] {
    if (translationAsked(input)) return [];
    return [
      fieldProblem(
        'target_language',
        `${this.name} only translates: it needs a target_language other than the text's language (source_language)`,
      ),
    ];
  }

  /** By the text's length: about four characters a token, each way, and the instructions of every call. */
  override estimateCost({ input }: TaskRequest<TaskType.SubtitleGeneration>): Cost {
    const chars =
      input.timing_mode === 'manual' && input.segments
        ? input.segments.reduce((sum, s) => sum + s.text.length, 0)
        : (input.text?.length ?? 0);
    const calls = Math.max(1, Math.ceil(chars / MAX_CHARS_PER_CALL));
    const price = priceOf(this.config.openai.subtitleModel) ?? ESTIMATE_PRICE;
    const tokens = Math.ceil(chars / 4);
    return { amount: this.price(price, tokens + calls * CALL_OVERHEAD_TOKENS, tokens), currency: 'USD' };
  }

  async start(ctx: ProviderContext<TaskType.SubtitleGeneration>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InputInvalid);
    const request = ctx.input;
    const timing = timingOf(request);

    // The engine's timing first (it also refuses bad segments before anything is paid for).
    const engineCues = cuesOf(request);
    const timed: ManualSegment[] =
      request.timing_mode === 'manual'
        ? request.segments!
        : engineCues.map((cue) => ({ start: cue.startMs / 1000, end: cue.endMs / 1000, text: cue.lines.join(' ') }));
    const units = timed.map((segment, i) => ({ id: i + 1, text: segment.text }));
    const target = request.target_language!;
    const source = request.source_language ?? null;

    const calls = batches(units);
    const translated = new Map<number, string>();
    const detected: string[] = [];
    const usage = { prompt: 0, completion: 0 };
    let done = 0;
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < calls.length && !failed) {
        const batch = calls[next++];
        const answer = await this.translate(ctx, {
          target_language: target,
          source_language: source,
          cues: batch,
        }).catch((err: unknown) => {
          failed = true; // the task fails: no more calls to pay for
          throw err;
        });
        for (const cue of answer.cues) translated.set(cue.id, cue.text);
        detected.push(answer.sourceLanguage);
        usage.prompt += answer.usage.prompt_tokens;
        usage.completion += answer.usage.completion_tokens;
        done++;
        ctx.reportProgress((0.9 * done) / calls.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CALLS, calls.length) }, worker));

    const segments = timed.map((segment, i) => ({ ...segment, text: translated.get(i + 1)! }));
    const cues = engineStep(() => cuesFromSegments(segments, timing));
    const sourceLanguage = source ?? mostCommon(detected);
    const model = this.config.openai.subtitleModel;
    const price = priceOf(model);
    const output = subtitleOutput(request, cues, {
      source_language: sourceLanguage,
      translated: primaryLanguage(sourceLanguage) !== primaryLanguage(target),
      translation: { model, calls: calls.length, prompt_tokens: usage.prompt, completion_tokens: usage.completion },
    });
    return {
      kind: 'completed',
      output,
      ...(price && { cost: { amount: this.price(price, usage.prompt, usage.completion), currency: 'USD' } }),
    };
  }

  /** One chat completion: a batch of cues in, the same cues translated out (checked id by id). */
  private async translate(
    ctx: ProviderContext<TaskType.SubtitleGeneration>,
    question: SubtitleTranslationRequest,
  ): Promise<{ cues: Unit[]; sourceLanguage: string; usage: CompletionUsage }> {
    const { apiKey, baseUrl, subtitleModel } = this.config.openai;
    const body: CreateChatCompletionRequest = {
      model: subtitleModel,
      messages: [
        { role: 'system', content: INSTRUCTIONS },
        { role: 'user', content: JSON.stringify(question) },
      ],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'subtitle_translation', strict: true, schema: ANSWER_SCHEMA },
      },
    };
    const res = await providerRequest(this.name, {
      method: 'POST',
      url: `${baseUrl}/chat/completions`,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal: ctx.signal,
      maxBytes: 4 * 1024 * 1024,
    });
    if (res.status < 200 || res.status >= 300) throw openAiFailure(this.name, res, apiKey);
    const completion = res.json<ChatCompletion>();
    const choice = Array.isArray(completion?.choices) ? completion.choices[0] : undefined;
    if (!choice?.message) throw this.badAnswer('a completion without a message');
    if (typeof choice.message.refusal === 'string' && choice.message.refusal) {
      throw ProviderError.permanent(
        ProviderErrorCode.ContentPolicy,
        `${this.name}: the model refused: ${choice.message.refusal}`.slice(0, 500),
      );
    }
    if (choice.finish_reason === 'content_filter') {
      throw ProviderError.permanent(ProviderErrorCode.ContentPolicy, `${this.name}: the answer was filtered`);
    }
    if (choice.finish_reason === 'length') throw this.badAnswer('a translation cut short (finish_reason length)');

    let answer: SubtitleTranslationAnswer;
    try {
      answer = JSON.parse(choice.message.content ?? '') as SubtitleTranslationAnswer;
    } catch {
      throw this.badAnswer('a translation that is not JSON');
    }
    const cues = Array.isArray(answer?.cues) ? answer.cues : [];
    const asked = question.cues.map((cue) => cue.id);
    const ids = cues.map((cue) => cue?.id);
    if (cues.length !== asked.length || asked.some((id, i) => ids[i] !== id)) {
      throw this.badAnswer(
        `${cues.length} cues for the ${asked.length} it was sent (ids ${asked[0]}–${asked[asked.length - 1]})`,
      );
    }
    const empty = cues.find((cue) => typeof cue.text !== 'string' || cue.text.trim() === '');
    if (empty) throw this.badAnswer(`an empty translation for cue ${empty.id}`);
    const usage = completion.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    return {
      cues: cues.map((cue) => ({ id: cue.id, text: cue.text.trim() })),
      sourceLanguage:
        typeof answer.source_language === 'string' && answer.source_language ? answer.source_language : 'und',
      usage,
    };
  }

  private price(price: { input: number; output: number }, input: number, output: number): number {
    return Math.round(((input * price.input + output * price.output) / 1e6) * 1e6) / 1e6;
  }

  /** The model's answer is not what was asked: another call may well get it right, so it is retried. */
  private badAnswer(what: string): ProviderError {
    return ProviderError.transient(ProviderErrorCode.BadResponse, `${this.name} answered ${what}`);
  }
}

function mostCommon(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'und';
}
