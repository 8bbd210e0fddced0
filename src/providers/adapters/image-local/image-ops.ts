import type { Sharp } from 'sharp';
import { sharp } from '../../lazy-sharp';
import { Lab, labStats, LabStats, paletteStats, transferLab } from './lab';

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export type StencilStyle = 'standard' | 'topographic' | 'outline';

export interface StencilOptions {
  style: StencilStyle;
  /** Line thickness in pixels (1–10). */
  thickness: number;
  /** 0..1: higher keeps fewer lines (and fewer dark areas). */
  threshold: number;
  /** 0..1: how much fine detail survives the blur before edges are looked for. */
  detail: number;
  background: 'white' | 'transparent';
}

export interface EnhanceOptions {
  scale: 2 | 4;
  /** 0..1: denoise and sharpen strength. */
  strength: number;
}

export type ColourTarget = { reference: string } | { palette: readonly string[] };

export interface EncodedImage {
  data: Buffer;
  width: number;
  height: number;
  format: ImageFormat;
}

/** Bounds on what one operation reads and makes (decompression bombs, and ×4 upscales of big images). */
export interface ImageLimits {
  /** Pixels an input may have (sharp's `limitInputPixels`). */
  inputPixels: number;
  /** Pixels an output may have (an enhance of scale 4 makes 16 times the input's). */
  outputPixels: number;
}

/** Raw 8-bit pixels with their geometry. */
interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** A problem with an input image itself (undecodable, too big): never worth a retry. */
export class ImageInputError extends Error {
  constructor(
    message: string,
    readonly tooLarge = false,
  ) {
    super(message);
    this.name = 'ImageInputError';
  }
}

/** Oriented size of an image file, or an ImageInputError when sharp cannot read it or it is over the pixel limit. */
export async function probeImage(file: string, limits: ImageLimits): Promise<{ width: number; height: number }> {
  let meta;
  try {
    // The header alone is read: the pixel limit is checked below, so an image over it is told apart from a broken one.
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageInputError(`not an image that can be read (${(err as Error).message})`);
  }
  const { width, height } = meta.autoOrient ?? meta;
  if (!width || !height) throw new ImageInputError('not an image that can be read (no size)');
  if (width * height > limits.inputPixels) {
    throw new ImageInputError(`${width}x${height} is over the ${limits.inputPixels} pixels an image may have`, true);
  }
  return { width, height };
}

function open(file: string, limits: ImageLimits): Sharp {
  return sharp(file, { limitInputPixels: limits.inputPixels, failOn: 'error' }).rotate();
}

function fromRaw(raw: Raw): Sharp {
  return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
}

async function toRaw(image: Sharp): Promise<Raw> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** One channel out of a pass (sharp may hand a one-channel image back as sRGB). */
async function grey(image: Sharp): Promise<Raw> {
  return toRaw(image.extractChannel(0));
}

async function encode(image: Sharp, format: ImageFormat): Promise<EncodedImage> {
  const encoder =
    format === 'png'
      ? image.png({ compressionLevel: 6 })
      : format === 'jpeg'
        ? image.flatten({ background: '#ffffff' }).jpeg({ quality: 90, mozjpeg: true })
        : image.webp({ quality: 90 });
  const { data, info } = await encoder.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, format };
}

/**
 * Sobel gradient magnitude of a one-channel image (borders repeat the edge pixel); 0..~1443 for 8-bit input.
 */
export function sobel(pixels: Uint8Array, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const up = (y === 0 ? 0 : y - 1) * width;
    const row = y * width;
    const down = (y === height - 1 ? y : y + 1) * width;
    for (let x = 0; x < width; x++) {
      const left = x === 0 ? 0 : x - 1;
      const right = x === width - 1 ? x : x + 1;
      const tl = pixels[up + left];
      const tr = pixels[up + right];
      const bl = pixels[down + left];
      const br = pixels[down + right];
      const gx = tr + 2 * pixels[row + right] + br - tl - 2 * pixels[row + left] - bl;
      const gy = bl + 2 * pixels[down + x] + br - tl - 2 * pixels[up + x] - tr;
      out[row + x] = Math.sqrt(gx * gx + gy * gy);
    }
  }
  return out;
}

/** The magnitude the strong edges of this picture reach: its 99th percentile, but never below a floor. */
function strongEdge(magnitude: Float32Array): number {
  const bins = new Uint32Array(1444);
  let max = 0;
  for (const m of magnitude) {
    const bin = Math.min(1443, Math.round(m));
    bins[bin]++;
    if (m > max) max = m;
  }
  let seen = 0;
  const wanted = magnitude.length * 0.99;
  let p99 = 0;
  for (let bin = 0; bin < bins.length; bin++) {
    seen += bins[bin];
    if (seen >= wanted) {
      p99 = bin;
      break;
    }
  }
  return Math.max(p99, 0.25 * max, 60);
}

/**
 * A stencil: black lines on white (or on transparency). Greyscale, blurred by `detail`; Sobel edges kept above a
 * threshold relative to the picture's strong edges; `standard` adds the dark areas, `topographic` draws the
 * contours of quantised luminance instead, `outline` keeps the edges alone. Lines are thickened (dilation) and
 * cleaned (a 3×3 median drops specks), so the result is two-tone.
 */
export async function stencil(file: string, options: StencilOptions, format: ImageFormat, limits: ImageLimits) {
  const sigma = 0.4 + (1 - options.detail) * 2.1;
  const source = await grey(open(file, limits).flatten({ background: '#ffffff' }).greyscale().blur(sigma));
  const { width, height } = source;
  const luminance = source.data;
  // Black lines on white: sharp's morphology grows black.
  const lines = Buffer.alloc(width * height, 255);
  if (options.style === 'topographic') {
    const levels = 3 + Math.round(options.detail * 7);
    const band = (v: number) => Math.min(levels - 1, Math.floor((v * levels) / 256));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const b = band(luminance[i]);
        const right = x + 1 < width && band(luminance[i + 1]) !== b;
        const below = y + 1 < height && band(luminance[i + width]) !== b;
        if (right || below) lines[i] = 0;
      }
    }
  } else {
    const magnitude = sobel(luminance, width, height);
    const cut = strongEdge(magnitude) * (0.15 + 0.7 * options.threshold);
    const dark = options.style === 'standard' ? 255 * (0.18 + 0.2 * (1 - options.threshold)) : -1;
    for (let i = 0; i < lines.length; i++) {
      if (magnitude[i] >= cut || luminance[i] < dark) lines[i] = 0;
    }
  }
  let drawn: Raw = { data: lines, width, height, channels: 1 };
  if (options.thickness > 1) drawn = await grey(fromRaw(drawn).dilate(options.thickness - 1));
  drawn = await grey(fromRaw(drawn).median(3));
  // The median of a two-tone image is two-tone already; this keeps it so whatever the kernel's rounding.
  for (let i = 0; i < drawn.data.length; i++) drawn.data[i] = drawn.data[i] < 128 ? 0 : 255;
  if (options.background === 'white') return encode(fromRaw(drawn), format);
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < drawn.data.length; i++) rgba[i * 4 + 3] = 255 - drawn.data[i];
  return encode(fromRaw({ data: rgba, width, height, channels: 4 }), format);
}

/**
 * Upscale ×`scale` with Lanczos (a=3), then a median denoise (from strength 0.25) and an unsharp mask scaled by
 * `strength`, and a gentle luminance normalisation (1st to 99th percentile).
 */
export async function enhance(file: string, options: EnhanceOptions, format: ImageFormat, limits: ImageLimits) {
  const { width, height } = await probeImage(file, limits);
  const outWidth = width * options.scale;
  const outHeight = height * options.scale;
  if (outWidth * outHeight > limits.outputPixels) {
    throw new ImageInputError(
      `×${options.scale} of ${width}x${height} would make ${outWidth}x${outHeight}, over the ${limits.outputPixels} pixels an output may have`,
      true,
    );
  }
  // One libvips pass: sharp runs resize, median, sharpen and normalise in this very order, so the steps need no raw
  // copy of the full-size image between them (each would be width × height × channels bytes).
  const strength = options.strength;
  let image = open(file, limits).resize({ width: outWidth, height: outHeight, fit: 'fill', kernel: 'lanczos3' });
  if (strength >= 0.25) image = image.median(3);
  const enhanced = await toRaw(
    image
      .sharpen({ sigma: 0.6 + 1.4 * strength, m1: 0.5 + strength, m2: 1 + 4 * strength })
      .normalise({ lower: 1, upper: 99 }),
  );
  return encode(fromRaw(enhanced), format);
}

/**
 * Moves the image's colour statistics (mean and spread of each Lab channel) towards the reference image's, or the
 * palette's, by `strength`. A palette of one colour moves the mean only (its spread says nothing).
 */
export async function colourMatch(
  file: string,
  target: ColourTarget,
  strength: number,
  format: ImageFormat,
  limits: ImageLimits,
) {
  const image = await toRaw(open(file, limits).toColourspace('srgb'));
  const rgbChannels = image.channels === 4 || image.channels === 3 ? image.channels : undefined;
  if (!rgbChannels) throw new ImageInputError(`an image of ${image.channels} channels cannot be recoloured`);
  const from = labStats(image.data, rgbChannels);
  let to: LabStats;
  if ('reference' in target) {
    // The reference's statistics need not every pixel: a 512-pixel rendition has the same.
    const reference = await toRaw(
      open(target.reference, limits)
        .resize({ width: 512, height: 512, fit: 'inside', withoutEnlargement: true })
        .removeAlpha()
        .toColourspace('srgb'),
    );
    to = labStats(reference.data, reference.channels);
  } else {
    to = paletteStats(target.palette);
    if (target.palette.length < 2) to = { mean: to.mean, std: from.std };
  }
  transferLab(image.data, rgbChannels, from, to, strength);
  // Colours pushed out of the sRGB gamut are clipped, which pulls the mean back: one shift of the mean makes it up.
  const wanted = from.mean.map((m, c) => m + strength * (to.mean[c] - m)) as Lab;
  const reached = labStats(image.data, rgbChannels);
  if (Math.hypot(...wanted.map((m, c) => m - reached.mean[c])) > 0.5) {
    transferLab(image.data, rgbChannels, reached, { mean: wanted, std: reached.std }, 1);
  }
  return encode(fromRaw(image), format);
}
