import { Injectable, Optional } from '@nestjs/common';
import { StoredMedia } from '../../stored-media';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { mediaUrlGuard } from '../../../security/security.module';
import { MediaUrlGuard } from '../../../security/url-guard';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import {
  Cost,
  fieldProblem,
  MediaProvider,
  ProviderArtifact,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { classifyStatus, HttpResponse, providerRequest } from '../../provider-http';
import { editCostEstimate, editProblems, runImageEdit } from './openai-image-edits';
import {
  CreateImageRequest,
  ImagesResponse,
  OPENAI_IMAGE_MODELS,
  OpenAiErrorBody,
  OpenAiImageModel,
  OpenAiImageSize,
} from './openai.types';

/** An image task's input (ImageGenerateDto); `model` may name an OpenAI model. */
type ImageInput = TaskInputOf<TaskType.ImageGeneration>;

const PROMPT_LIMIT: Record<OpenAiImageModel, number> = { 'dall-e-2': 1000, 'dall-e-3': 4000, 'gpt-image-1': 32000 };

/** Platform sizes each model makes, and the size sent for each. */
const SIZES: Record<OpenAiImageModel, Partial<Record<string, OpenAiImageSize>>> = {
  'dall-e-2': { '512x512': '512x512', '1024x1024': '1024x1024' },
  'dall-e-3': { '1024x1024': '1024x1024', '1024x1792': '1024x1792' },
  'gpt-image-1': { '1024x1024': '1024x1024', '1024x1792': '1024x1536' },
};

/**
 * Published price per image (PROVIDERS.md §1) by model, platform quality and platform size. gpt-image-1 is really
 * billed by tokens; its per-image figures at medium/high quality are the estimate.
 */
const PRICES: Record<OpenAiImageModel, Record<'standard' | 'hd', Record<string, number>>> = {
  'dall-e-2': {
    standard: { '512x512': 0.018, '1024x1024': 0.02 },
    hd: { '512x512': 0.018, '1024x1024': 0.02 },
  },
  'dall-e-3': {
    standard: { '1024x1024': 0.04, '1024x1792': 0.08 },
    hd: { '1024x1024': 0.08, '1024x1792': 0.12 },
  },
  'gpt-image-1': {
    standard: { '1024x1024': 0.042, '1024x1792': 0.063 },
    hd: { '1024x1024': 0.167, '1024x1792': 0.25 },
  },
};

function isImageModel(model: string): model is OpenAiImageModel {
  return (OPENAI_IMAGE_MODELS as readonly string[]).includes(model);
}

/** The vendor's error message without the key (OpenAI echoes part of a wrong key; never pass a key on). */
export function openAiMessage(res: HttpResponse, apiKey?: string): { message: string; code: string | null } {
  let message = `HTTP ${res.status}`;
  let code: string | null = null;
  try {
    const body = JSON.parse(res.text()) as Partial<OpenAiErrorBody>;
    if (body?.error && typeof body.error.message === 'string') {
      message = body.error.message;
      code = typeof body.error.code === 'string' ? body.error.code : null;
    }
  } catch {
    // Not JSON (a proxy's HTML page): the status says enough.
  }
  if (apiKey) message = message.split(apiKey).join('***');
  return { message, code };
}

/** A non-2xx OpenAI answer as a ProviderError: content-policy refusals are final, the rest by status. */
export function openAiFailure(provider: string, res: HttpResponse, apiKey?: string): ProviderError {
  const { message, code } = openAiMessage(res, apiKey);
  // gpt-image-1 words its safety refusals `moderation_blocked`; DALL·E `content_policy_violation`.
  if (code === 'content_policy_violation' || code === 'moderation_blocked') {
    return ProviderError.permanent(
      ProviderErrorCode.ContentPolicy,
      `${provider}: ${message}`.slice(0, 500),
      res.status,
    );
  }
  return classifyStatus(provider, res, message);
}

type ImageTypes = TaskType.ImageGeneration | TaskType.ImageEdit;

/**
 * OpenAI image generation (dall-e-3 by default, dall-e-2, gpt-image-1), synchronous: one call answers the images as
 * base64. The platform's size/quality/style are mapped onto what each model accepts; what a model cannot do is
 * refused at submit time by validate(). image_edit runs on gpt-image-1 through its edits endpoint
 * (openai-image-edits.ts).
 */
@Injectable()
export class OpenAiImagesAdapter extends MediaProvider<ImageTypes> {
  readonly name = 'openai-images';
  readonly taskTypes = [TaskType.ImageGeneration, TaskType.ImageEdit] as const;
  override readonly qualityScore = 0.9;
  override readonly costModel =
    'per image: dall-e-3 $0.04–0.12, dall-e-2 $0.016–0.02, gpt-image-1 $0.011–0.25 (edits: + ~$0.01 per input image)';

  constructor(
    private readonly config: AppConfig,
    // image_edit inputs are fetched on the user's behalf: through the URL guard.
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

  override validate(task: TaskRequest<ImageTypes>): FieldProblem[] {
    if (task.type === TaskType.ImageEdit) return editProblems(this.name, task.input);
    const input = withDefaults(task.input);
    if (!isImageModel(input.model)) {
      return [
        fieldProblem('model', `${this.name} cannot serve "${input.model}" (it runs ${OPENAI_IMAGE_MODELS.join(', ')})`),
      ];
    }
    const model = input.model;
    const problems: FieldProblem[] = [];
    if (input.prompt.trim() === '') problems.push(fieldProblem('prompt', 'required'));
    else if (input.prompt.length > PROMPT_LIMIT[model]) {
      problems.push(fieldProblem('prompt', `${model} accepts at most ${PROMPT_LIMIT[model]} characters`));
    }
    if (!SIZES[model][input.size]) {
      problems.push(
        fieldProblem('size', `${model} does not make ${input.size} images (${Object.keys(SIZES[model]).join(' or ')})`),
      );
    }
    if (model === 'dall-e-3' && input.n !== 1) problems.push(fieldProblem('n', 'dall-e-3 makes one image per request'));
    if (model === 'dall-e-2' && input.quality !== 'standard') {
      problems.push(fieldProblem('quality', 'dall-e-2 has standard quality only'));
    }
    return problems;
  }

  override estimateCost(task: TaskRequest<ImageTypes>): Cost {
    if (task.type === TaskType.ImageEdit) return editCostEstimate(task.input);
    const input = withDefaults(task.input);
    if (!isImageModel(input.model)) return { amount: 0, currency: 'USD' };
    const byQuality = PRICES[input.model][input.quality === 'hd' ? 'hd' : 'standard'];
    // An unsupported size never runs (validate refuses it); price it as the square image.
    const each = byQuality[input.size] ?? byQuality['1024x1024'];
    return { amount: Math.round(each * input.n * 1e6) / 1e6, currency: 'USD' };
  }

  /** The OpenAI request for a valid input (see validate()). */
  buildRequest(raw: ImageInput): CreateImageRequest {
    const input = withDefaults(raw);
    const model = input.model as OpenAiImageModel;
    const size = SIZES[model][input.size];
    switch (model) {
      case 'dall-e-3':
        return {
          model,
          prompt: input.prompt,
          n: 1,
          size,
          quality: input.quality,
          style: input.style === 'realistic' ? 'natural' : 'vivid',
          response_format: 'b64_json',
        };
      case 'dall-e-2':
        // No quality (standard is its only one) and no style: dall-e-2 has none.
        return { model, prompt: input.prompt, n: input.n, size, response_format: 'b64_json' };
      case 'gpt-image-1':
        // Always base64: sending response_format is an error for GPT image models.
        return { model, prompt: input.prompt, n: input.n, size, quality: input.quality === 'hd' ? 'high' : 'medium' };
    }
  }

  async start(ctx: ProviderContext<ImageTypes>): Promise<StartOutcome> {
    this.assertValid(ctx, ProviderErrorCode.InputInvalid);
    if (ctx.type === TaskType.ImageEdit) return runImageEdit(this.name, this.config, this.guard, ctx, this.uploads);
    const { apiKey, baseUrl } = this.config.openai;
    const request = this.buildRequest(ctx.input);
    const res = await providerRequest(this.name, {
      method: 'POST',
      url: `${baseUrl}/images/generations`,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(request),
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal: ctx.signal,
    });
    if (res.status < 200 || res.status >= 300) throw openAiFailure(this.name, res, apiKey);
    const body = res.json<ImagesResponse>();
    const images = Array.isArray(body?.data) ? body.data : [];
    if (images.length === 0) {
      throw ProviderError.transient(
        ProviderErrorCode.BadResponse,
        `${this.name} answered ${res.status} without images`,
      );
    }
    const artifacts = images.map((image, i): ProviderArtifact => {
      const filename = `image-${i + 1}.png`;
      if (typeof image.b64_json === 'string') {
        return { contentType: 'image/png', data: Buffer.from(image.b64_json, 'base64'), filename };
      }
      if (typeof image.url === 'string') return { contentType: 'image/png', url: image.url, filename };
      throw ProviderError.transient(ProviderErrorCode.BadResponse, `${this.name} answered an image without data`);
    });
    const revised = images.find((image) => typeof image.revised_prompt === 'string')?.revised_prompt;
    return {
      kind: 'completed',
      output: {
        artifacts,
        data: {
          model: request.model,
          ...(revised !== undefined && { revised_prompt: revised }),
          images: images.length,
        },
      },
      cost: this.estimateCost(ctx),
    };
  }
}

/** The input with the DTO's defaults, so adapters called directly (tests, re-runs) see the same values. */
function withDefaults(input: ImageInput): Required<ImageInput> {
  return {
    prompt: input.prompt,
    style: input.style ?? 'realistic',
    size: input.size ?? '1024x1024',
    quality: input.quality ?? 'standard',
    n: input.n ?? 1,
    model: input.model || 'dall-e-3',
  };
}
