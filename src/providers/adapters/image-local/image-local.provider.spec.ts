import sharp from 'sharp';
import { ctxFor, providerError } from '../../../../test/support/adapter-testing';
import {
  at,
  darkest,
  decode,
  labDistance,
  laplacianVariance,
  meanLab,
  meanRgb,
  photo,
  scene,
  twoToneShare,
} from '../../../../test/support/images';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode, ProviderOutput } from '../../provider.port';
import { CpuSlots } from '../../cpu-slots';
import { ImageLocalProvider } from './image-local.provider';
import { labToRgb, rgbToLab } from './lab';

const dataUrl = (png: Buffer, type = 'image/png') => `data:${type};base64,${png.toString('base64')}`;

describe('ImageLocalProvider', () => {
  const provider = new ImageLocalProvider(AppConfig.fromEnv({}), undefined, {
    inputPixels: 1_000_000,
    outputPixels: 2_000_000,
  });

  async function run(input: TaskInputOf<TaskType.ImageEdit>): Promise<ProviderOutput> {
    const outcome = await provider.start(ctxFor({ type: TaskType.ImageEdit, input }));
    if (outcome.kind !== 'completed') throw new Error('image-local answers at once');
    return outcome.output;
  }

  it('refuses generate at submit, so routing never picks it for that', () => {
    expect(provider.validate({ type: TaskType.ImageEdit, input: { operation: 'generate', prompt: 'x' } })).toEqual([
      { field: 'operation', message: expect.stringMatching(/^operation: image-local does not generate/) },
    ]);
    expect(provider.validate({ type: TaskType.ImageEdit, input: { operation: 'stencil', image_url: 'x' } })).toEqual(
      [],
    );
    expect(provider.isConfigured()).toBe(true);
    expect(provider.estimateCost({ type: TaskType.ImageEdit, input: { operation: 'enhance' } })).toEqual({
      amount: 0,
      currency: 'USD',
    });
  });

  describe('stencil', () => {
    it('is two-tone, black lines on white, keeping the edges of the subject and not its flat inside', async () => {
      const picture = await scene();
      const output = await run({ operation: 'stencil', image_url: dataUrl(picture), style: 'outline' });
      expect(output.data).toEqual({ width: 240, height: 180, format: 'png', operation: 'stencil' });
      expect(output.artifacts[0]).toMatchObject({ contentType: 'image/png', filename: 'stencil.png' });
      const image = await decode(output.artifacts[0].data!);
      expect(twoToneShare(image)).toBeGreaterThanOrEqual(0.95);
      // The ring (radius 54 around (72, 90)) is drawn; the background gradient and the ring's inside are not.
      expect(darkest(image, 72 + 54, 90)).toBeLessThan(64);
      expect(darkest(image, 72, 90 - 54)).toBeLessThan(64);
      expect(at(image, 72, 90)).toBeGreaterThan(192);
      expect(at(image, 10, 10)).toBeGreaterThan(192);
      // The square (x 144–204, y 45–135): its border is a line, its inside is not in an outline…
      expect(darkest(image, 144, 90)).toBeLessThan(64);
      expect(at(image, 174, 90)).toBeGreaterThan(192);
      // …and is filled in the standard style (dark areas).
      const standard = await decode(
        (await run({ operation: 'stencil', image_url: dataUrl(picture) })).artifacts[0].data!,
      );
      expect(at(standard, 174, 90)).toBeLessThan(64);
      expect(twoToneShare(standard)).toBeGreaterThanOrEqual(0.95);
    });

    it('draws thicker lines with a larger thickness, and fewer with a higher threshold', async () => {
      const picture = dataUrl(await photo());
      const inked = async (input: Partial<TaskInputOf<TaskType.ImageEdit>>) => {
        const image = await decode(
          (await run({ operation: 'stencil', image_url: picture, ...input })).artifacts[0].data!,
        );
        return image.data.filter((v) => v < 128).length / image.data.length;
      };
      expect(await inked({ style: 'outline', thickness: 4 })).toBeGreaterThan(
        await inked({ style: 'outline', thickness: 1 }),
      );
      expect(await inked({ style: 'outline', threshold: 0.9 })).toBeLessThan(
        await inked({ style: 'outline', threshold: 0.1 }),
      );
    });

    it('draws contour bands in the topographic style, and lines on transparency when asked', async () => {
      const picture = dataUrl(await photo());
      const topo = await decode(
        (await run({ operation: 'stencil', image_url: picture, style: 'topographic' })).artifacts[0].data!,
      );
      expect(twoToneShare(topo)).toBeGreaterThanOrEqual(0.95);
      const inked = topo.data.filter((v) => v < 128).length / topo.data.length;
      expect(inked).toBeGreaterThan(0.02);
      expect(inked).toBeLessThan(0.6);

      const clear = await run({
        operation: 'stencil',
        image_url: picture,
        background: 'transparent',
        output_format: 'webp',
      });
      expect(clear.artifacts[0].contentType).toBe('image/webp');
      const image = await decode(clear.artifacts[0].data!);
      expect(image.channels).toBe(4);
      const alphas = new Set<number>();
      for (let i = 3; i < image.data.length; i += 4) alphas.add(image.data[i] < 128 ? 0 : 1);
      expect([...alphas].sort()).toEqual([0, 1]);
      expect(twoToneShare(image)).toBeGreaterThanOrEqual(0.95);
    });

    it('is deterministic', async () => {
      const picture = dataUrl(await photo());
      const a = await run({ operation: 'stencil', image_url: picture, thickness: 3 });
      const b = await run({ operation: 'stencil', image_url: picture, thickness: 3 });
      expect(a.artifacts[0].data!.equals(b.artifacts[0].data!)).toBe(true);
    });
  });

  describe('enhance', () => {
    it('upscales by the scale, sharper than a plain Lanczos upscale, with about the same mean colour', async () => {
      const picture = await sharp(await photo())
        .blur(1.2)
        .png()
        .toBuffer();
      const output = await run({ operation: 'enhance', image_url: dataUrl(picture), output_format: 'jpeg' });
      expect(output.data).toEqual({ width: 400, height: 300, format: 'jpeg', operation: 'enhance' });
      expect(output.artifacts[0].contentType).toBe('image/jpeg');
      const enhanced = output.artifacts[0].data!;
      const plain = await sharp(picture).resize(400, 300, { kernel: 'lanczos3' }).png().toBuffer();
      expect(laplacianVariance(await decode(enhanced))).toBeGreaterThan(1.5 * laplacianVariance(await decode(plain)));
      const [before, after] = [await meanRgb(picture), await meanRgb(enhanced)];
      after.forEach((v, c) => expect(Math.abs(v - before[c])).toBeLessThan(12));

      const four = await run({ operation: 'enhance', image_url: dataUrl(picture), scale: 4, strength: 0.1 });
      expect(four.data).toMatchObject({ width: 800, height: 600 });
    });

    it('refuses an output over the pixel limit as too large', async () => {
      const big = await sharp({ create: { width: 600, height: 600, channels: 3, background: '#808080' } })
        .png()
        .toBuffer();
      const err = await providerError(run({ operation: 'enhance', image_url: dataUrl(big), scale: 4 }));
      expect([err.code, err.retryable]).toEqual([ProviderErrorCode.InputTooLarge, false]);
    });
  });

  describe('color_match', () => {
    it('moves the mean Lab colour at least 80 % of the way to the reference’s', async () => {
      const source = await photo(200, 150, [1.15, 0.8, 0.6]);
      const reference = await photo(160, 120, [0.6, 0.85, 1.2]);
      const output = await run({
        operation: 'color_match',
        image_url: dataUrl(source),
        reference_url: dataUrl(reference),
      });
      expect(output.data).toEqual({ width: 200, height: 150, format: 'png', operation: 'color_match' });
      const [before, target, after] = await Promise.all([source, reference, output.artifacts[0].data!].map(meanLab));
      expect(labDistance(after, target)).toBeLessThanOrEqual(0.2 * labDistance(before, target));
    });

    it('goes part of the way by strength, and towards a palette', async () => {
      const source = dataUrl(await photo(200, 150, [1.15, 0.8, 0.6]));
      const before = await meanLab(Buffer.from(source.split(',')[1], 'base64'));
      const palette = ['#1d3557', '#457b9d', '#a8dadc'];
      const full = await meanLab(
        (await run({ operation: 'color_match', image_url: source, palette })).artifacts[0].data!,
      );
      const half = await meanLab(
        (await run({ operation: 'color_match', image_url: source, palette, strength: 0.5 })).artifacts[0].data!,
      );
      const paletteMean = await meanLab(
        await sharp({ create: { width: 3, height: 1, channels: 3, background: '#000' } })
          .raw()
          .toBuffer()
          .then((raw) => {
            palette.forEach((hex, i) => {
              const v = parseInt(hex.slice(1), 16);
              raw.set([(v >> 16) & 255, (v >> 8) & 255, v & 255], i * 3);
            });
            return sharp(raw, { raw: { width: 3, height: 1, channels: 3 } })
              .png()
              .toBuffer();
          }),
      );
      expect(labDistance(full, paletteMean)).toBeLessThanOrEqual(0.2 * labDistance(before, paletteMean));
      const halfway = labDistance(half, paletteMean) / labDistance(before, paletteMean);
      expect(halfway).toBeGreaterThan(0.3);
      expect(halfway).toBeLessThan(0.7);
    });

    it('converts sRGB to Lab and back within a level', () => {
      const out = new Uint8Array(3);
      for (const rgb of [
        [0, 0, 0],
        [255, 255, 255],
        [200, 30, 90],
        [12, 180, 250],
      ]) {
        const lab = rgbToLab(rgb[0], rgb[1], rgb[2]);
        labToRgb(lab[0], lab[1], lab[2], out, 0);
        [...out].forEach((v, c) => expect(Math.abs(v - rgb[c])).toBeLessThanOrEqual(1));
      }
      expect(rgbToLab(255, 255, 255)[0]).toBeCloseTo(100, 1);
    });
  });

  describe('inputs', () => {
    it('fails a broken image permanently as input_invalid, naming the field', async () => {
      const broken = `data:image/png;base64,${Buffer.from('not a png at all').toString('base64')}`;
      const err = await providerError(run({ operation: 'enhance', image_url: broken }));
      expect([err.code, err.retryable]).toEqual([ProviderErrorCode.InputInvalid, false]);
      expect(err.message).toMatch(/^image_url: /);
      const ref = await providerError(
        run({ operation: 'color_match', image_url: dataUrl(await photo()), reference_url: broken }),
      );
      expect([ref.code, ref.message.split(':')[0]]).toEqual([ProviderErrorCode.InputInvalid, 'reference_url']);
    });

    it('refuses an image over the input pixel limit before decoding it', async () => {
      const wide = await sharp({ create: { width: 1100, height: 1000, channels: 3, background: '#fff' } })
        .png()
        .toBuffer();
      const err = await providerError(run({ operation: 'stencil', image_url: dataUrl(wide) }));
      expect(err.code).toBe(ProviderErrorCode.InputTooLarge);
    });
  });

  describe('turns at the CPU (LOCAL_CPU_CONCURRENCY)', () => {
    it('runs one operation at a time with one turn, and a task stopped while it waits ends with its own reason', async () => {
      const slots = new CpuSlots(1);
      const single = new ImageLocalProvider(AppConfig.fromEnv({}), undefined, undefined, undefined, slots);
      const image = dataUrl(await photo());
      const stop = new AbortController();
      const runs = [1, 2, 3].map(() =>
        single.start(ctxFor({ type: TaskType.ImageEdit, input: { operation: 'enhance', image_url: image } })),
      );
      const stopped = single.start({
        ...ctxFor({ type: TaskType.ImageEdit, input: { operation: 'stencil', image_url: image } }),
        signal: stop.signal,
      });
      // One operation runs and the other three wait their turn (each downloads and checks its image first).
      const since = Date.now();
      while (slots.load.waiting < 3 && Date.now() - since < 5000) await new Promise((r) => setTimeout(r, 1));
      expect(slots.load).toEqual({ running: 1, waiting: 3 });
      stop.abort(new Error('cancelled'));
      await expect(stopped).rejects.toThrow('cancelled');
      const outcomes = await Promise.all(runs);
      expect(outcomes.map((o) => o.kind)).toEqual(['completed', 'completed', 'completed']);
      expect(slots.load).toEqual({ running: 0, waiting: 0 });
    });
  });
});
