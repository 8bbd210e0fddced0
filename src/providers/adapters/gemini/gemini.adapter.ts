import { Injectable, Optional } from '@nestjs/common';
import { StoredMedia } from '../../stored-media';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { mediaUrlGuard } from '../../../security/security.module';
import { MediaUrlGuard } from '../../../security/url-guard';
import { IMAGE_EDIT_DEFAULTS } from '../../../tasks/dto/image-edit.dto';
import { TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { imageArtifact, ImageBytes, readImages } from '../../image-media';
import { ImageEditInput, imageInstruction, imageRefsOf } from '../../image-instructions';
import { classifyStatus, HttpResponse, providerRequest, retryAfterMs } from '../../provider-http';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import {
  GEMINI_IMAGE_PRICE,
  GEMINI_INLINE_REQUEST_MAX_BYTES,
  GEMINI_INPUT_PRICE_PER_TOKEN,
  GEMINI_SAFETY_REASONS,
  GEMINI_TOKENS_PER_INPUT_IMAGE,
  GeminiErrorBody,
  GenerateContentRequest,
  GenerateContentResponse,
} from './gemini.types';

/** Largest side and pixel count of an enhanced image (the upscale is done here, in memory). */
const MAX_OUTPUT_SIDE = 16384;
const MAX_OUTPUT_PIXELS = 64 * 1024 * 1024;
/** Base64 grows bytes by 4/3: what the images may weigh for the request to stay within Gemini's inline limit. */
const MAX_INLINE_IMAGE_BYTES = Math.floor((GEMINI_INLINE_REQUEST_MAX_BYTES - 64 * 1024) * 0.75);

const round6 = (amount: number) => Math.round(amount * 1e6) / 1e6;

/**
 * Google Gemini's native image model (gemini-2.5-flash-image by default) for image_edit: `generate` from the prompt
 * and up to four reference images, and the other operations as an instruction built from the operation's knobs
 * with the image(s). One synchronous generateContent call; the images go inline as base64. Edits come back at the
 * source's size (`enhance`: the source's times `scale`, resampled here from what the model restored).
 */
@Injectable()
export class GeminiAdapter extends MediaProvider<TaskType.ImageEdit> {
  readonly name = 'gemini';
  readonly taskTypes = [TaskType.ImageEdit] as const;
  override readonly qualityScore = 0.85;
  override readonly costModel = 'per image: $0.039 (gemini-2.5-flash-image), input images ~$0.0001 each';

  constructor(
    private readonly config: AppConfig,
    // Inputs are fetched on the user's behalf: through the URL guard.
    @Optional() private readonly guard: MediaUrlGuard = mediaUrlGuard(config),
    // upload:<id> inputs are read from storage.
    @Optional() private readonly uploads?: StoredMedia,
  ) {
    super();
  }

  isConfigured(): boolean {
    return !!this.config.gemini.apiKey;
  }

  override baseUrl(): string {
    return this.config.gemini.baseUrl;
  }

  override estimateCost({ input }: TaskRequest<TaskType.ImageEdit>): Cost {
    const inputTokens = imageRefsOf(input).length * GEMINI_TOKENS_PER_INPUT_IMAGE + 200;
    return { amount: round6(GEMINI_IMAGE_PRICE + inputTokens * GEMINI_INPUT_PRICE_PER_TOKEN), currency: 'USD' };
  }

  override validate({ input }: TaskRequest<TaskType.ImageEdit>): FieldProblem[] {
    const problems: FieldProblem[] = [];
    if (input.operation === 'stencil' && input.background === 'transparent') {
      problems.push(fieldProblem('background', `${this.name} makes opaque images only`));
    }
    return problems;
  }

  async start(ctx: ProviderContext<TaskType.ImageEdit>): Promise<StartOutcome> {
    const { apiKey, baseUrl, imageModel } = this.config.gemini;
    if (!apiKey) throw ProviderError.permanent(ProviderErrorCode.AuthFailed, 'gemini has no API key configured');
    this.assertValid(ctx, ProviderErrorCode.InputInvalid);
    const input = ctx.input;
    const timeoutMs = this.config.providerHttpTimeoutMs;

    const images = await readImages(imageRefsOf(input), {
      guard: this.guard,
      uploads: this.uploads,
      maxBytes: MAX_INLINE_IMAGE_BYTES,
      timeoutMs,
      signal: ctx.signal,
    });
    const inlineBytes = images.reduce((sum, image) => sum + image.data.length, 0);
    if (inlineBytes > MAX_INLINE_IMAGE_BYTES) {
      throw ProviderError.permanent(
        ProviderErrorCode.InputTooLarge,
        `${this.name} takes at most ${MAX_INLINE_IMAGE_BYTES} bytes of images in one request (${inlineBytes} given)`,
      );
    }
    const size = outputSize(input, images[0]);
    ctx.reportProgress(0.2);

    const request = buildRequest(input, images);
    const res = await providerRequest(this.name, {
      method: 'POST',
      url: `${baseUrl}/v1beta/models/${encodeURIComponent(imageModel)}:generateContent`,
      headers: { 'x-goog-api-key': apiKey, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(request),
      timeoutMs,
      signal: ctx.signal,
    });
    if (res.status < 200 || res.status >= 300) throw geminiFailure(this.name, res, apiKey);

    const body = res.json<GenerateContentResponse>();
    const { data, text } = this.imageOf(body);
    const made = await imageArtifact(this.name, data, input.output_format ?? IMAGE_EDIT_DEFAULTS.outputFormat, size);
    const promptTokens = body.usageMetadata?.promptTokenCount;
    const cost: Cost =
      typeof promptTokens === 'number'
        ? { amount: round6(GEMINI_IMAGE_PRICE + promptTokens * GEMINI_INPUT_PRICE_PER_TOKEN), currency: 'USD' }
        : this.estimateCost(ctx);
    return {
      kind: 'completed',
      output: {
        artifacts: [made.artifact],
        data: {
          operation: input.operation,
          model: body.modelVersion ?? imageModel,
          width: made.width,
          height: made.height,
          format: made.format,
          ...(text && { text }),
        },
      },
      cost,
    };
  }

  /** The answer's first image, or why there is none: refusals are final, as is an answer without an image. */
  private imageOf(body: GenerateContentResponse): { data: Buffer; text?: string } {
    const blocked = body?.promptFeedback?.blockReason;
    if (blocked) {
      throw ProviderError.permanent(ProviderErrorCode.ContentPolicy, `${this.name} blocked the prompt (${blocked})`);
    }
    const candidate = Array.isArray(body?.candidates) ? body.candidates[0] : undefined;
    if (!candidate) {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, `${this.name} answered without a candidate`);
    }
    const parts = Array.isArray(candidate.content?.parts) ? candidate.content.parts : [];
    const text = parts
      .map((part) => ('text' in part && !part.thought ? part.text : ''))
      .join('')
      .trim();
    for (const part of parts) {
      if ('inlineData' in part && typeof part.inlineData?.data === 'string' && part.inlineData.data.length > 0) {
        return { data: Buffer.from(part.inlineData.data, 'base64'), text: text || undefined };
      }
    }
    const reason = candidate.finishReason ?? 'none';
    if (GEMINI_SAFETY_REASONS.includes(reason)) {
      throw ProviderError.permanent(
        ProviderErrorCode.ContentPolicy,
        `${this.name} made no image: refused for safety (finishReason ${reason})`,
      );
    }
    throw ProviderError.permanent(
      ProviderErrorCode.NoImage,
      `${this.name} made no image (finishReason ${reason})${text ? `: ${text.slice(0, 200)}` : ''}`,
    );
  }
}

/** The generateContent request: the instruction, then the images, asking for image output. */
export function buildRequest(input: ImageEditInput, images: ImageBytes[]): GenerateContentRequest {
  return {
    contents: [
      {
        role: 'user',
        parts: [
          { text: imageInstruction(input) },
          ...images.map((image) => ({ inlineData: { mimeType: image.mimeType, data: image.data.toString('base64') } })),
        ],
      },
    ],
    generationConfig: { responseModalities: ['TEXT', 'IMAGE'] },
  };
}

/**
 * The size the result is given: an edit keeps its source's, `enhance` multiplies it by `scale`; `generate` keeps
 * what the model made. Past the limits an enhance is refused before anything is paid for.
 */
function outputSize(
  input: ImageEditInput,
  source: ImageBytes | undefined,
): { width: number; height: number } | undefined {
  if (!source || input.operation === 'generate') return undefined;
  const scale = input.operation === 'enhance' ? (input.scale ?? IMAGE_EDIT_DEFAULTS.scale) : 1;
  const width = source.width * scale;
  const height = source.height * scale;
  if (Math.max(width, height) > MAX_OUTPUT_SIDE || width * height > MAX_OUTPUT_PIXELS) {
    throw ProviderError.permanent(
      ProviderErrorCode.InputInvalid,
      `image_url: ${source.width}×${source.height} enlarged ×${scale} is more than ${MAX_OUTPUT_SIDE} px a side or ` +
        `${MAX_OUTPUT_PIXELS / 1024 / 1024} MP`,
    );
  }
  return { width, height };
}

/** A non-2xx Gemini answer as a ProviderError (google.rpc.Status body); the key never appears in the message. */
export function geminiFailure(provider: string, res: HttpResponse, apiKey?: string): ProviderError {
  let error: Partial<GeminiErrorBody['error']> = {};
  try {
    error = (JSON.parse(res.text()) as Partial<GeminiErrorBody>).error ?? {};
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  let message = [error.status, error.message].filter(Boolean).join(': ') || `HTTP ${res.status}`;
  if (apiKey) message = message.split(apiKey).join('***');
  const details = Array.isArray(error.details) ? error.details : [];
  if (details.some((d) => d.reason === 'API_KEY_INVALID')) {
    return ProviderError.permanent(ProviderErrorCode.AuthFailed, `${provider}: ${message}`.slice(0, 500), res.status);
  }
  if (res.status === 429 || res.status >= 500) {
    // Google says when to come back in the body's RetryInfo ("17s") more often than in a Retry-After header.
    const delay = details.find((d) => typeof d.retryDelay === 'string')?.retryDelay;
    const fromBody = delay && /^\d+(\.\d+)?s$/.test(delay) ? parseFloat(delay) * 1000 : undefined;
    const after = retryAfterMs(res.headers) ?? fromBody;
    const detail = `${provider} answered ${res.status}: ${message}`.slice(0, 500);
    const code = res.status === 429 ? ProviderErrorCode.RateLimited : ProviderErrorCode.Unavailable;
    return ProviderError.transient(code, detail, after, res.status);
  }
  return classifyStatus(provider, res, message);
}
