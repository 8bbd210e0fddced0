import { AppConfig } from '../../../config/app-config';
import { StoredMedia } from '../../stored-media';
import { FieldProblem } from '../../../common/domain-exception';
import { MediaUrlGuard } from '../../../security/url-guard';
import { IMAGE_EDIT_DEFAULTS } from '../../../tasks/dto/image-edit.dto';
import { TaskType } from '../../../tasks/task.enums';
import { imageArtifact, readImages } from '../../image-media';
import { ImageEditInput } from '../../image-instructions';
import { HttpResponse, providerRequest } from '../../provider-http';
import {
  Cost,
  fieldProblem,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { STABILITY_EDIT_CREDITS, STABILITY_UPSCALE_FAST_LIMITS, StabilityImageResponse } from './stability.types';

/** v2beta takes requests of at most 10 MiB: what the image may weigh beside the text fields. */
const MAX_INPUT_BYTES = 9 * 1024 * 1024;

/**
 * What Stability's v2beta image services cannot do of an image_edit input. `enhance` is the fast upscaler (×4, ×2
 * made from it), which has no strength; `color_match` is search-and-recolor, which recolours what `prompt` names
 * towards a palette, fully. No stencil (control/sketch makes an image *from* a sketch, the reverse) and no generate.
 */
export function stabilityEditProblems(provider: string, input: ImageEditInput): FieldProblem[] {
  switch (input.operation) {
    case 'enhance':
      return input.strength === undefined
        ? []
        : [fieldProblem('strength', `${provider} upscales without a denoise or sharpen strength`)];
    case 'color_match': {
      const problems: FieldProblem[] = [];
      if (input.reference_url !== undefined) {
        problems.push(fieldProblem('reference_url', `${provider} recolours towards a palette, not a reference image`));
      }
      if (!input.prompt) {
        problems.push(
          fieldProblem('prompt', `${provider} recolours the object the prompt names ("the car"): give one`),
        );
      }
      if (input.strength !== undefined && input.strength !== 1) {
        problems.push(fieldProblem('strength', `${provider} recolours fully (strength 1) only`));
      }
      return problems;
    }
    case 'stencil':
      return [fieldProblem('operation', `${provider} has no line-art extraction for stencil`)];
    case 'generate':
      return [fieldProblem('operation', `${provider} generates through image_generation, not image_edit`)];
  }
}

export function stabilityEditCost(input: ImageEditInput): Cost {
  const credits =
    input.operation === 'color_match' ? STABILITY_EDIT_CREDITS.searchAndRecolor : STABILITY_EDIT_CREDITS.upscaleFast;
  return { amount: credits / 100, currency: 'USD' };
}

/**
 * image_edit on Stability v2beta: `enhance` → `stable-image/upscale/fast` (×4; ×2 resampled here from it),
 * `color_match` with a palette → `stable-image/edit/search-and-recolor` (`select_prompt` = the task's prompt). One
 * multipart request, answered as base64 JSON (`accept: application/json`).
 */
export async function runStabilityEdit(
  provider: string,
  config: AppConfig,
  guard: MediaUrlGuard,
  ctx: ProviderContext<TaskType.ImageEdit>,
  failure: (res: HttpResponse) => ProviderError,
  uploads?: StoredMedia,
): Promise<StartOutcome> {
  const { apiKey, baseUrl } = config.stability;
  const input = ctx.input;
  const timeoutMs = config.providerHttpTimeoutMs;
  const [source] = await readImages([{ field: 'image_url', ref: input.image_url! }], {
    guard,
    uploads,
    maxBytes: MAX_INPUT_BYTES,
    timeoutMs,
    signal: ctx.signal,
  });
  const format = input.output_format ?? IMAGE_EDIT_DEFAULTS.outputFormat;
  const form = new FormData();
  form.append('image', new Blob([source.data], { type: source.mimeType }), `image.${source.format}`);
  form.append('output_format', format);

  let path: string;
  let size: { width: number; height: number };
  if (input.operation === 'enhance') {
    const { minSide, maxSide, maxPixels } = STABILITY_UPSCALE_FAST_LIMITS;
    const { width, height } = source;
    if (Math.min(width, height) < minSide || Math.max(width, height) > maxSide || width * height > maxPixels) {
      throw ProviderError.permanent(
        ProviderErrorCode.InputInvalid,
        `image_url: ${provider} upscales images of ${minSide} to ${maxSide} px a side and at most ${maxPixels} px ` +
          `in all (this one is ${width}×${height})`,
      );
    }
    path = 'upscale/fast';
    const scale = input.scale ?? IMAGE_EDIT_DEFAULTS.scale;
    size = { width: width * scale, height: height * scale };
  } else {
    path = 'edit/search-and-recolor';
    form.append('select_prompt', input.prompt!);
    form.append('prompt', `${input.palette!.join(', ')} colours`);
    size = { width: source.width, height: source.height };
  }
  ctx.reportProgress(0.2);

  const res = await providerRequest(provider, {
    method: 'POST',
    url: `${baseUrl}/v2beta/stable-image/${path}`,
    headers: { accept: 'application/json', authorization: `Bearer ${apiKey}` },
    body: form,
    timeoutMs,
    signal: ctx.signal,
  });
  if (res.status !== 200) throw failure(res);
  const body = res.json<Partial<StabilityImageResponse>>();
  if (body.finish_reason === 'CONTENT_FILTERED') {
    throw ProviderError.permanent(ProviderErrorCode.ContentPolicy, `${provider} filtered the image (CONTENT_FILTERED)`);
  }
  if (typeof body.image !== 'string' || body.image.length === 0) {
    throw ProviderError.transient(ProviderErrorCode.BadResponse, `${provider} answered 200 without an image`);
  }
  const made = await imageArtifact(provider, Buffer.from(body.image, 'base64'), format, size);
  return {
    kind: 'completed',
    output: {
      artifacts: [made.artifact],
      data: {
        operation: input.operation,
        endpoint: path,
        width: made.width,
        height: made.height,
        format: made.format,
        ...(body.seed !== undefined && { seed: body.seed }),
      },
    },
    cost: stabilityEditCost(input),
  };
}
