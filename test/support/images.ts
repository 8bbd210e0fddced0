import sharp from 'sharp';
import { Lab, labStats } from '../../src/providers/adapters/image-local/lab';

/** Raw pixels of an encoded image (alpha kept when it has one). */
export async function decode(
  data: Buffer | string,
): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data: pixels, info } = await sharp(data).raw().toBuffer({ resolveWithObject: true });
  return { data: pixels, width: info.width, height: info.height, channels: info.channels };
}

/**
 * A test picture: a horizontal gradient from `from` to `to` with a mid-grey ring and a filled square drawn on it (the
 * subject whose edges a stencil keeps), as PNG.
 */
export async function scene(
  width = 240,
  height = 180,
  from: [number, number, number] = [235, 225, 210],
  to: [number, number, number] = [250, 245, 240],
): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = x / (width - 1);
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = Math.round(from[c] + t * (to[c] - from[c]));
    }
  }
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<circle cx="${width * 0.3}" cy="${height / 2}" r="${height * 0.3}" fill="none" stroke="#606060" stroke-width="6"/>` +
      `<rect x="${width * 0.6}" y="${height * 0.25}" width="${width * 0.25}" height="${height * 0.5}" fill="#202020"/>` +
      `</svg>`,
  );
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: svg }])
    .png()
    .toBuffer();
}

/** A colourful photo-like picture: smooth colour fields, a few shapes and some fine texture. */
export async function photo(width = 200, height = 150, tint: [number, number, number] = [1, 1, 1]): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const texture = ((x * 7 + y * 13) % 11) - 5;
      const base = [
        90 + 80 * Math.sin(x / 23) + texture,
        100 + 60 * Math.cos(y / 17) + texture,
        110 + 50 * Math.sin((x + y) / 31) + texture,
      ];
      for (let c = 0; c < 3; c++) rgb[i + c] = Math.max(0, Math.min(255, Math.round(base[c] * tint[c])));
    }
  }
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<rect x="20" y="20" width="60" height="40" fill="#f0f0f0"/><circle cx="140" cy="90" r="30" fill="#151515"/>` +
      `</svg>`,
  );
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: svg }])
    .png()
    .toBuffer();
}

/** Share of pixels near black or near white (alpha, when there is one, is what is drawn). */
export function twoToneShare(image: { data: Buffer; channels: number }, margin = 24): number {
  let near = 0;
  let n = 0;
  for (let i = 0; i < image.data.length; i += image.channels) {
    const v = image.channels === 4 || image.channels === 2 ? image.data[i + image.channels - 1] : image.data[i];
    if (v <= margin || v >= 255 - margin) near++;
    n++;
  }
  return near / n;
}

/** The first channel's value at (x, y). */
export function at(image: { data: Buffer; width: number; channels: number }, x: number, y: number): number {
  return image.data[(Math.round(y) * image.width + Math.round(x)) * image.channels];
}

/** The darkest value of the first channel within `radius` pixels of (x, y): is a line drawn there? */
export function darkest(
  image: { data: Buffer; width: number; height: number; channels: number },
  x: number,
  y: number,
  radius = 5,
): number {
  let min = 255;
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const px = Math.round(x) + dx;
      const py = Math.round(y) + dy;
      if (px >= 0 && py >= 0 && px < image.width && py < image.height) min = Math.min(min, at(image, px, py));
    }
  }
  return min;
}

/** Variance of the 4-neighbour Laplacian of the luminance: the usual measure of sharpness. */
export function laplacianVariance(image: { data: Buffer; width: number; height: number; channels: number }): number {
  const { width, height, channels } = image;
  const lum = (x: number, y: number) => {
    const i = (y * width + x) * channels;
    return channels >= 3
      ? 0.299 * image.data[i] + 0.587 * image.data[i + 1] + 0.114 * image.data[i + 2]
      : image.data[i];
  };
  let sum = 0;
  let squares = 0;
  let n = 0;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const v = lum(x - 1, y) + lum(x + 1, y) + lum(x, y - 1) + lum(x, y + 1) - 4 * lum(x, y);
      sum += v;
      squares += v * v;
      n++;
    }
  }
  return squares / n - (sum / n) ** 2;
}

/** Mean Lab colour of an encoded image. */
export async function meanLab(data: Buffer | string): Promise<Lab> {
  const { data: pixels, info } = await sharp(data).removeAlpha().toColourspace('srgb').raw().toBuffer({
    resolveWithObject: true,
  });
  return labStats(pixels, info.channels).mean;
}

/** Mean of each channel of an encoded image, 0–255. */
export async function meanRgb(data: Buffer | string): Promise<number[]> {
  const stats = await sharp(data).removeAlpha().stats();
  return stats.channels.map((c) => c.mean);
}

export const labDistance = (a: Lab, b: Lab) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
