import { Injectable, Optional } from '@nestjs/common';
import { StoredMedia } from '../../stored-media';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { mediaUrlGuard } from '../../../security/security.module';
import { MediaUrlGuard } from '../../../security/url-guard';
import { IMAGE_SIZES, IMAGE_STYLES } from '../../../tasks/dto/task-create.dto';
import { TaskInputOf, TaskRequest } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { classifyStatus, HttpResponse, providerRequest } from '../../provider-http';
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
import {
  STABILITY_CREDITS,
  STABILITY_PROMPT_MAX,
  STABILITY_SD3_MODELS,
  StabilityAspectRatio,
  StabilityEndpoint,
  StabilityErrorBody,
  StabilityImageResponse,
  StabilitySd3Model,
  StabilityStylePreset,
} from './stability.types';
import { runStabilityEdit, stabilityEditCost, stabilityEditProblems } from './stability-image-edits';

/** Our sizes have no pixel equivalent in v2beta (it picks ~1 MP itself): the aspect ratio is what carries over. */
const ASPECT_RATIOS: Record<(typeof IMAGE_SIZES)[number], StabilityAspectRatio> = {
  '512x512': '1:1',
  '1024x1024': '1:1',
  '1024x1792': '9:16',
};

const STYLE_PRESETS: Record<(typeof IMAGE_STYLES)[number], StabilityStylePreset> = {
  realistic: 'photographic',
  artistic: 'digital-art',
  anime: 'anime',
};

/** What one task turns into: the endpoint, its fields, and how many images. */
interface StabilityPlan {
  endpoint: StabilityEndpoint;
  model?: StabilitySd3Model;
  prompt: string;
  aspectRatio: StabilityAspectRatio;
  stylePreset: StabilityStylePreset;
  n: number;
}

interface GeneratedImage {
  artifact: ProviderArtifact;
  seed?: number;
}

/**
 * The form as multipart bytes and its content-type (with the boundary). Encoded here because undici 7's `request`
 * only streams its own FormData class: Node 20's global FormData (from Node's bundled undici) fails its brand check
 * with "action is not a function". Text fields only, so buffering costs nothing.
 */
async function encodeMultipart(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const encoded = new Response(form);
  return {
    body: Buffer.from(await encoded.arrayBuffer()),
    contentType: encoded.headers.get('content-type') ?? 'multipart/form-data',
  };
}

function isSd3Model(model: string | undefined): model is StabilitySd3Model {
  return (STABILITY_SD3_MODELS as readonly (string | undefined)[]).includes(model);
}

type ImageTypes = TaskType.ImageGeneration | TaskType.ImageEdit;

/**
 * Stability AI v2beta text-to-image (Stable Image Core / Ultra / SD3.5). Synchronous: one multipart request per
 * image, answered with the image as base64 JSON. image_edit's enhance and palette color_match run on its image
 * services (stability-image-edits.ts).
 */
@Injectable()
export class StabilityAdapter extends MediaProvider<ImageTypes> {
  readonly name = 'stability';
  readonly taskTypes = [TaskType.ImageGeneration, TaskType.ImageEdit] as const;
  override readonly qualityScore = 0.8;
  override readonly costModel =
    'per image: core $0.03, ultra $0.08, sd3.5-large $0.065; fast upscale $0.02, search-and-recolor $0.05';

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
    return !!this.config.stability.apiKey;
  }

  override baseUrl(): string {
    return this.config.stability.baseUrl;
  }

  override estimateCost(task: TaskRequest<ImageTypes>): Cost {
    if (task.type === TaskType.ImageEdit) return stabilityEditCost(task.input);
    const plan = this.plan(task.input);
    // sd3 is priced per model; core/ultra per endpoint.
    const credits = STABILITY_CREDITS[plan.model ?? (plan.endpoint === 'ultra' ? 'ultra' : 'core')];
    // Credits can be fractional (6.5): multiply before dividing so 6.5 × 3 stays exact.
    return { amount: (credits * plan.n) / 100, currency: 'USD' };
  }

  /** Every platform size and style has its stability equivalent: only the model and the prompt's length can fail. */
  override validate(task: TaskRequest<ImageTypes>): FieldProblem[] {
    if (task.type === TaskType.ImageEdit) return stabilityEditProblems(this.name, task.input);
    const { input } = task;
    const problems: FieldProblem[] = [];
    if (input.model !== undefined && !isSd3Model(input.model)) {
      problems.push(fieldProblem('model', `stability cannot run ${input.model}`));
    }
    if (input.prompt.length > STABILITY_PROMPT_MAX) {
      problems.push(fieldProblem('prompt', `stability accepts at most ${STABILITY_PROMPT_MAX} characters`));
    }
    return problems;
  }

  async start(ctx: ProviderContext<ImageTypes>): Promise<StartOutcome> {
    const apiKey = this.config.stability.apiKey;
    if (!apiKey) throw ProviderError.permanent(ProviderErrorCode.AuthFailed, 'stability has no API key configured');
    this.assertValid(ctx, ProviderErrorCode.InvalidRequest);
    if (ctx.type === TaskType.ImageEdit) {
      return runStabilityEdit(this.name, this.config, this.guard, ctx, (res) => this.failure(res), this.uploads);
    }
    const plan = this.plan(ctx.input);

    // One failed image fails the task: stop the siblings rather than let them run on unobserved.
    const batch = new AbortController();
    const signal = AbortSignal.any([ctx.signal, batch.signal]);
    let done = 0;
    let images: GeneratedImage[];
    try {
      images = await Promise.all(
        Array.from({ length: plan.n }, async (_, i) => {
          const image = await this.generate(plan, apiKey, i, signal);
          if (!signal.aborted) ctx.reportProgress(++done / plan.n);
          return image;
        }),
      );
    } catch (err) {
      batch.abort();
      throw err;
    }

    return {
      kind: 'completed',
      output: {
        artifacts: images.map((image) => image.artifact),
        data: {
          endpoint: plan.endpoint,
          ...(plan.model ? { model: plan.model } : {}),
          seeds: images.map((image) => image.seed),
          aspect_ratio: plan.aspectRatio,
        },
      },
      cost: this.estimateCost(ctx),
    };
  }

  private plan(input: TaskInputOf<TaskType.ImageGeneration>): StabilityPlan {
    const model = isSd3Model(input.model) ? input.model : undefined;
    const endpoint: StabilityEndpoint = model ? 'sd3' : input.quality === 'hd' ? 'ultra' : 'core';
    return {
      endpoint,
      model,
      prompt: input.prompt,
      aspectRatio: ASPECT_RATIOS[input.size ?? '1024x1024'],
      stylePreset: STYLE_PRESETS[input.style ?? 'realistic'],
      n: input.n ?? 1,
    };
  }

  private async generate(plan: StabilityPlan, apiKey: string, i: number, signal: AbortSignal): Promise<GeneratedImage> {
    // v2beta only takes multipart, even for text-only fields.
    const form = new FormData();
    form.append('prompt', plan.prompt);
    form.append('aspect_ratio', plan.aspectRatio);
    form.append('style_preset', plan.stylePreset);
    form.append('output_format', 'png');
    if (plan.model) form.append('model', plan.model);
    const multipart = await encodeMultipart(form);

    const res = await providerRequest(this.name, {
      method: 'POST',
      url: `${this.config.stability.baseUrl}/v2beta/stable-image/generate/${plan.endpoint}`,
      headers: {
        accept: 'application/json',
        authorization: `Bearer ${apiKey}`,
        'content-type': multipart.contentType,
      },
      body: multipart.body,
      timeoutMs: this.config.providerHttpTimeoutMs,
      signal,
    });
    if (res.status !== 200) throw this.failure(res);

    const body = res.json<Partial<StabilityImageResponse>>();
    if (body.finish_reason === 'CONTENT_FILTERED') {
      throw ProviderError.permanent(
        ProviderErrorCode.ContentPolicy,
        'stability filtered the image (finish_reason CONTENT_FILTERED)',
      );
    }
    if (typeof body.image !== 'string' || body.image.length === 0) {
      throw ProviderError.transient(ProviderErrorCode.BadResponse, 'stability answered 200 without an image');
    }
    return {
      artifact: { contentType: 'image/png', data: Buffer.from(body.image, 'base64'), filename: `image-${i + 1}.png` },
      seed: body.seed,
    };
  }

  /** A non-200 answer as a ProviderError; the body is {id, name, errors[]} unless a proxy answered instead. */
  private failure(res: HttpResponse): ProviderError {
    let body: Partial<StabilityErrorBody> = {};
    try {
      body = JSON.parse(res.text()) as Partial<StabilityErrorBody>;
    } catch {
      // Not JSON (a gateway page): classify by status alone.
    }
    const errors = Array.isArray(body?.errors) ? body.errors.map(String) : [];
    const name = typeof body?.name === 'string' ? body.name : undefined;
    const message = [name, errors.join('; ')].filter(Boolean).join(': ') || res.text().slice(0, 200) || 'no details';
    if (res.status === 403 && name === 'content_moderation') {
      return ProviderError.permanent(ProviderErrorCode.ContentPolicy, `stability refused the prompt: ${message}`, 403);
    }
    if (res.status === 413) {
      return ProviderError.permanent(ProviderErrorCode.InvalidRequest, `stability answered 413: ${message}`, 413);
    }
    return classifyStatus(this.name, res, message);
  }
}
