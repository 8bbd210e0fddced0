// undici's own FormData: Node's global one (from its bundled undici) makes undici 7's request() fail while streaming.
import { StoredMedia } from '../../stored-media';
import { FormData } from 'undici';
import { AppConfig } from '../../../config/app-config';
import { FieldProblem } from '../../../common/domain-exception';
import { MediaUrlGuard } from '../../../security/url-guard';
import { IMAGE_EDIT_DEFAULTS } from '../../../tasks/dto/image-edit.dto';
import { TaskType } from '../../../tasks/task.enums';
import { imageArtifact, ImageBytes, readImages } from '../../image-media';
import { ImageEditInput, imageInstruction, imageRefsOf } from '../../image-instructions';
import { providerRequest } from '../../provider-http';
import {
  Cost,
  fieldProblem,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  StartOutcome,
} from '../../provider.port';
import { openAiFailure } from './openai-images.adapter';
import { ImageEditFields, ImagesResponse } from './openai.types';

/** The model of every image_edit operation: the one GPT image model that takes several input images. */
export const EDIT_MODEL = 'gpt-image-1';
/** OpenAI's limit per input image of the GPT image models. */
const MAX_INPUT_BYTES = 50 * 1024 * 1024;

/**
 * gpt-image-1 token prices (PROVIDERS.md §1 figures; platform.openai.com/pricing): text in $5, image in $10, image
 * out $40 per million tokens. A medium 1024×1024 image is 1056 output tokens ($0.042), 1536 px 1584 ($0.063); an
 * input image counts about 1000 tokens (more with input_fidelity high), the estimate's $0.01 each.
 */
const PRICE_PER_TOKEN = { text: 5 / 1e6, image: 10 / 1e6, output: 40 / 1e6 };
const OUTPUT_PRICE: Record<'1024x1024' | '1536x1024' | '1024x1536', number> = {
  '1024x1024': 0.042,
  '1536x1024': 0.063,
  '1024x1536': 0.063,
};
const INPUT_IMAGE_PRICE = 0.01;

const round6 = (amount: number) => Math.round(amount * 1e6) / 1e6;

/** What OpenAI's image models cannot do of an image_edit input. */
export function editProblems(provider: string, input: ImageEditInput): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (input.operation === 'enhance') {
    problems.push(
      fieldProblem('operation', `${provider} does not upscale: ${EDIT_MODEL} makes images of 1024 to 1536 px`),
    );
  }
  if (input.operation === 'stencil' && input.background === 'transparent' && input.output_format === 'jpeg') {
    problems.push(fieldProblem('output_format', 'a transparent background needs png or webp'));
  }
  return problems;
}

export function editCostEstimate(input: ImageEditInput): Cost {
  return {
    amount: round6(OUTPUT_PRICE['1024x1024'] + imageRefsOf(input).length * INPUT_IMAGE_PRICE),
    currency: 'USD',
  };
}

/** The output size closest to the source's shape (gpt-image-1 makes three). */
function sizeFor(source: ImageBytes | undefined): '1024x1024' | '1536x1024' | '1024x1536' {
  if (!source) return '1024x1024';
  const ratio = source.width / source.height;
  return ratio >= 1.25 ? '1536x1024' : ratio <= 0.8 ? '1024x1536' : '1024x1024';
}

/** The multipart fields of POST /images/edits for an operation whose images are in hand. */
export function editFields(input: ImageEditInput, images: ImageBytes[]): ImageEditFields {
  const keepSource = input.operation !== 'generate';
  return {
    model: EDIT_MODEL,
    prompt: imageInstruction(input),
    n: 1,
    size: sizeFor(keepSource ? images[0] : undefined),
    quality: 'medium',
    output_format: input.output_format ?? IMAGE_EDIT_DEFAULTS.outputFormat,
    ...(keepSource && { input_fidelity: 'high' as const }),
    ...(input.operation === 'stencil' && input.background === 'transparent' && { background: 'transparent' as const }),
  };
}

/**
 * image_edit on OpenAI's image models: `POST /images/edits` (multipart, the images as `image[]`) for every operation
 * with an image — generate's references, the source with stencil and color_match (and color_match's reference) —
 * and `POST /images/generations` for a generate without references. The result keeps the source's size for edits.
 */
export async function runImageEdit(
  provider: string,
  config: AppConfig,
  guard: MediaUrlGuard,
  ctx: ProviderContext<TaskType.ImageEdit>,
  uploads?: StoredMedia,
): Promise<StartOutcome> {
  const { apiKey, baseUrl } = config.openai;
  const input = ctx.input;
  const timeoutMs = config.providerHttpTimeoutMs;
  const images = await readImages(imageRefsOf(input), {
    guard,
    uploads,
    maxBytes: MAX_INPUT_BYTES,
    timeoutMs,
    signal: ctx.signal,
  });
  ctx.reportProgress(0.2);
  const fields = editFields(input, images);

  let res;
  if (images.length === 0) {
    // A generate without references: there is nothing to edit, so it is a plain generation.
    const { input_fidelity: _unused, ...json } = fields;
    res = await providerRequest(provider, {
      method: 'POST',
      url: `${baseUrl}/images/generations`,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(json),
      timeoutMs,
      signal: ctx.signal,
    });
  } else {
    const form = new FormData();
    for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
    images.forEach((image, i) =>
      form.append('image[]', new Blob([image.data], { type: image.mimeType }), `image-${i + 1}.${image.format}`),
    );
    res = await providerRequest(provider, {
      method: 'POST',
      url: `${baseUrl}/images/edits`,
      headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
      body: form,
      timeoutMs,
      signal: ctx.signal,
    });
  }
  if (res.status < 200 || res.status >= 300) throw openAiFailure(provider, res, apiKey);

  const body = res.json<ImagesResponse>();
  const b64 = Array.isArray(body?.data) ? body.data[0]?.b64_json : undefined;
  if (typeof b64 !== 'string' || b64.length === 0) {
    throw ProviderError.transient(ProviderErrorCode.BadResponse, `${provider} answered ${res.status} without an image`);
  }
  const source = input.operation === 'generate' ? undefined : images[0];
  const made = await imageArtifact(
    provider,
    Buffer.from(b64, 'base64'),
    fields.output_format,
    source && { width: source.width, height: source.height },
  );
  const usage = body.usage;
  const cost: Cost = usage
    ? {
        amount: round6(
          (usage.input_tokens_details?.text_tokens ?? 0) * PRICE_PER_TOKEN.text +
            (usage.input_tokens_details?.image_tokens ?? 0) * PRICE_PER_TOKEN.image +
            usage.output_tokens * PRICE_PER_TOKEN.output,
        ),
        currency: 'USD',
      }
    : editCostEstimate(input);
  return {
    kind: 'completed',
    output: {
      artifacts: [made.artifact],
      data: {
        operation: input.operation,
        model: EDIT_MODEL,
        endpoint: images.length === 0 ? 'generations' : 'edits',
        width: made.width,
        height: made.height,
        format: made.format,
      },
    },
    cost,
  };
}
