/**
 * sRGB (D65) ↔ CIE Lab on raw 8-bit pixels, for colour matching. Tables stand in for the transfer curves, so a pixel
 * costs a few multiplications and three cube roots.
 */

export type Lab = [number, number, number];

/** Mean and standard deviation of each Lab channel. */
export interface LabStats {
  mean: Lab;
  std: Lab;
}

const XN = 0.95047;
const ZN = 1.08883;
const EPSILON = 216 / 24389;
const KAPPA = 24389 / 27;

/** 8-bit sRGB → linear light. */
const TO_LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});

/** Linear light (0..1 in 4096 steps) → 8-bit sRGB. */
const LINEAR_STEPS = 4095;
const TO_SRGB = Uint8Array.from({ length: LINEAR_STEPS + 1 }, (_, i) => {
  const c = i / LINEAR_STEPS;
  const v = c <= 0.0031308 ? c * 12.92 : 1.055 * c ** (1 / 2.4) - 0.055;
  return Math.round(v * 255);
});

const f = (t: number) => (t > EPSILON ? Math.cbrt(t) : (KAPPA * t + 16) / 116);
const fInverse = (v: number) => {
  const cube = v * v * v;
  return cube > EPSILON ? cube : (116 * v - 16) / KAPPA;
};

/** One 8-bit sRGB colour in Lab, written into `out`. */
export function rgbToLab(r: number, g: number, b: number, out: Lab = [0, 0, 0]): Lab {
  const lr = TO_LINEAR[r];
  const lg = TO_LINEAR[g];
  const lb = TO_LINEAR[b];
  const fx = f((0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb) / XN);
  const fy = f(0.2126729 * lr + 0.7151522 * lg + 0.072175 * lb);
  const fz = f((0.0193339 * lr + 0.119192 * lg + 0.9503041 * lb) / ZN);
  out[0] = 116 * fy - 16;
  out[1] = 500 * (fx - fy);
  out[2] = 200 * (fy - fz);
  return out;
}

const toByte = (linear: number) => TO_SRGB[Math.round(Math.min(1, Math.max(0, linear)) * LINEAR_STEPS)];

/** One Lab colour as 8-bit sRGB (out-of-gamut colours clipped per channel), written into `out` at `at`. */
export function labToRgb(l: number, a: number, b: number, out: Uint8Array | Buffer, at: number): void {
  const fy = (l + 16) / 116;
  const x = XN * fInverse(fy + a / 500);
  const y = l > KAPPA * EPSILON ? fy * fy * fy : l / KAPPA;
  const z = ZN * fInverse(fy - b / 200);
  out[at] = toByte(3.2404542 * x - 1.5371385 * y - 0.4985314 * z);
  out[at + 1] = toByte(-0.969266 * x + 1.8760108 * y + 0.041556 * z);
  out[at + 2] = toByte(0.0556434 * x - 0.2040259 * y + 1.0572252 * z);
}

/**
 * Lab statistics of raw interleaved pixels (3 or 4 channels, RGB first); with 4, fully transparent pixels are left
 * out.
 */
export function labStats(pixels: Uint8Array | Buffer, channels: number): LabStats {
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  const lab: Lab = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < pixels.length; i += channels) {
    if (channels === 4 && pixels[i + 3] === 0) continue;
    rgbToLab(pixels[i], pixels[i + 1], pixels[i + 2], lab);
    for (let c = 0; c < 3; c++) {
      sum[c] += lab[c];
      squares[c] += lab[c] * lab[c];
    }
    n++;
  }
  return statsOf(sum, squares, n);
}

/** Lab statistics of a palette of `#rrggbb` colours. */
export function paletteStats(palette: readonly string[]): LabStats {
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  for (const hex of palette) {
    const v = parseInt(hex.slice(1), 16);
    const lab = rgbToLab((v >> 16) & 255, (v >> 8) & 255, v & 255);
    for (let c = 0; c < 3; c++) {
      sum[c] += lab[c];
      squares[c] += lab[c] * lab[c];
    }
  }
  return statsOf(sum, squares, palette.length);
}

function statsOf(sum: number[], squares: number[], n: number): LabStats {
  const mean = sum.map((s) => (n ? s / n : 0)) as Lab;
  const std = squares.map((s, c) => (n ? Math.sqrt(Math.max(0, s / n - mean[c] * mean[c])) : 0)) as Lab;
  return { mean, std };
}

/** How far a channel's spread may be stretched: a nearly flat channel would otherwise turn its noise into colour. */
const MAX_SPREAD_RATIO = 4;

/**
 * Moves the pixels' Lab statistics from `from` towards `to` by `strength` (0: unchanged, 1: the target's mean and
 * spread), in place; alpha is kept. The Reinhard et al. transfer, in Lab rather than lαβ.
 */
export function transferLab(
  pixels: Uint8Array | Buffer,
  channels: number,
  from: LabStats,
  to: LabStats,
  strength: number,
): void {
  const ratio = [0, 1, 2].map((c) =>
    from.std[c] < 1e-3 ? 1 : Math.min(MAX_SPREAD_RATIO, to.std[c] / from.std[c]),
  ) as Lab;
  const lab: Lab = [0, 0, 0];
  const moved: Lab = [0, 0, 0];
  for (let i = 0; i < pixels.length; i += channels) {
    rgbToLab(pixels[i], pixels[i + 1], pixels[i + 2], lab);
    for (let c = 0; c < 3; c++) {
      const target = (lab[c] - from.mean[c]) * ratio[c] + to.mean[c];
      moved[c] = lab[c] + strength * (target - lab[c]);
    }
    labToRgb(moved[0], moved[1], moved[2], pixels, i);
  }
}
