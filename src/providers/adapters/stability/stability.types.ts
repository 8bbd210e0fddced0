/** Stability AI REST v2beta (stable-image/generate): the parts the adapter and its emulator use. */

export type StabilityEndpoint = 'core' | 'ultra' | 'sd3';

export const STABILITY_SD3_MODELS = ['sd3.5-large', 'sd3.5-large-turbo', 'sd3.5-medium', 'sd3.5-flash'] as const;
export type StabilitySd3Model = (typeof STABILITY_SD3_MODELS)[number];

export const STABILITY_ASPECT_RATIOS = ['16:9', '1:1', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] as const;
export type StabilityAspectRatio = (typeof STABILITY_ASPECT_RATIOS)[number];

export const STABILITY_STYLE_PRESETS = [
  '3d-model',
  'analog-film',
  'anime',
  'cinematic',
  'comic-book',
  'digital-art',
  'enhance',
  'fantasy-art',
  'isometric',
  'line-art',
  'low-poly',
  'modeling-compound',
  'neon-punk',
  'origami',
  'photographic',
  'pixel-art',
  'tile-texture',
] as const;
export type StabilityStylePreset = (typeof STABILITY_STYLE_PRESETS)[number];

export const STABILITY_OUTPUT_FORMATS = ['jpeg', 'png', 'webp'] as const;
export type StabilityOutputFormat = (typeof STABILITY_OUTPUT_FORMATS)[number];

export const STABILITY_PROMPT_MAX = 10000;

/** Credits per successful image (1 credit = $0.01). */
export const STABILITY_CREDITS: Record<'core' | 'ultra' | StabilitySd3Model, number> = {
  core: 3,
  ultra: 8,
  'sd3.5-large': 6.5,
  'sd3.5-large-turbo': 4,
  'sd3.5-medium': 3.5,
  'sd3.5-flash': 2.5,
};

/** Multipart fields of a text-to-image request (all sent as strings). */
export interface StabilityGenerateFields {
  prompt: string;
  negative_prompt?: string;
  aspect_ratio?: StabilityAspectRatio;
  seed?: number;
  style_preset?: StabilityStylePreset;
  output_format?: StabilityOutputFormat;
  /** sd3 only. */
  model?: StabilitySd3Model;
  mode?: 'text-to-image' | 'image-to-image';
  cfg_scale?: number;
}

export type StabilityFinishReason = 'SUCCESS' | 'CONTENT_FILTERED';

/** 200 with `accept: application/json`. */
export interface StabilityImageResponse {
  /** Base64 of the image bytes. */
  image: string;
  finish_reason: StabilityFinishReason;
  seed?: number;
}

/** Every non-2xx answer. */
export interface StabilityErrorBody {
  id: string;
  name: string;
  errors: string[];
}

/**
 * Credits of the image services image_edit uses (third-party copies of platform.stability.ai/pricing; see
 * docs/providers.md): fast upscale 2, search-and-recolor 5.
 */
export const STABILITY_EDIT_CREDITS = { upscaleFast: 2, searchAndRecolor: 5 } as const;

/** What `stable-image/upscale/fast` takes: 32 to 1536 px a side, 1,024 to 1,048,576 px in all; it answers ×4. */
export const STABILITY_UPSCALE_FAST_LIMITS = { minSide: 32, maxSide: 1536, maxPixels: 1_048_576 } as const;
