import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { OutputInfo, Sharp } from 'sharp';
import { IMAGE_LIMITS } from './image-local.provider';
import { enhance } from './image-ops';

describe('enhance', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-ops-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('gives, in one libvips pass, exactly what the steps give one after another (resize, median, sharpen, normalise)', async () => {
    const [w, h] = [120, 90];
    const pixels = Buffer.alloc(w * h * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (Math.sin(i * 0.37) * 60 + 128 + (i % 7) * 9) & 255;
    const file = join(dir, 'source.png');
    await writeFile(
      file,
      await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toBuffer(),
    );
    for (const strength of [0.1, 0.5, 1]) {
      const raw = (image: Sharp) => image.raw().toBuffer({ resolveWithObject: true });
      const from = ({ data, info }: { data: Buffer; info: OutputInfo }) =>
        sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
      let step = await raw(sharp(file).resize({ width: w * 2, height: h * 2, fit: 'fill', kernel: 'lanczos3' }));
      if (strength >= 0.25) step = await raw(from(step).median(3));
      step = await raw(from(step).sharpen({ sigma: 0.6 + 1.4 * strength, m1: 0.5 + strength, m2: 1 + 4 * strength }));
      const expected = await raw(from(step).normalise({ lower: 1, upper: 99 }));
      const got = await enhance(file, { scale: 2, strength }, 'png', IMAGE_LIMITS);
      expect([got.width, got.height]).toEqual([w * 2, h * 2]);
      expect((await sharp(got.data).raw().toBuffer()).equals(expected.data)).toBe(true);
    }
  });
});
