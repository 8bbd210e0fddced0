import { IncomingHttpHeaders } from 'node:http';
import { AddressInfo } from 'node:net';
import { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { completed, ctxFor, pngDataUrl, providerError } from '../../../../test/support/adapter-testing';
import {
  DEFAULT_KNOBS,
  EmulatorKnobs,
  EmulatorStats,
  SANDBOX_API_KEY,
} from '../../../../sandbox/emulators/emulator-knobs';
import { createStabilityEmulator } from '../../../../sandbox/emulators/stability.emulator';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode } from '../../provider.port';
import { StabilityAdapter } from './stability.adapter';

const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
let emulator: FastifyInstance;
let baseUrl: string;

type EditInput = TaskInputOf<TaskType.ImageEdit>;

function adapterWith(env: Record<string, string> = {}): StabilityAdapter {
  return new StabilityAdapter(
    AppConfig.fromEnv({
      STABILITY_API_KEY: SANDBOX_API_KEY,
      STABILITY_BASE_URL: baseUrl,
      PROVIDER_HTTP_TIMEOUT_MS: '5000',
      ...env,
    }),
  );
}

function run(input: EditInput, adapter = adapterWith()) {
  return adapter.start(ctxFor({ type: TaskType.ImageEdit, input }));
}

const lastFields = () => stats.lastBodies[stats.lastBodies.length - 1] as Record<string, unknown>;

beforeAll(async () => {
  emulator = createStabilityEmulator({ knobs, stats });
  emulator.addHook('onRequest', async (req) => {
    seen.push({ url: req.url, headers: req.headers });
  });
  await emulator.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  Object.assign(knobs, DEFAULT_KNOBS);
  stats.reset();
});

describe('StabilityAdapter on image_edit', () => {
  it('enhances through the fast upscaler: multipart image, bearer key, ×4 as answered and ×2 resampled', async () => {
    const source = await pngDataUrl(40, 32);
    const four = await completed(run({ operation: 'enhance', image_url: source, scale: 4 }));
    const request = seen[seen.length - 1];
    expect(request.url).toBe('/v2beta/stable-image/upscale/fast');
    expect(request.headers.authorization).toBe(`Bearer ${SANDBOX_API_KEY}`);
    expect(request.headers.accept).toBe('application/json');
    expect(lastFields()).toEqual({
      image: expect.objectContaining({ filename: 'image.png', type: 'image/png' }) as unknown,
      output_format: 'png',
    });
    let meta = await sharp(four.output.artifacts[0].data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 160, 128]);
    expect(four.cost).toEqual({ amount: 0.02, currency: 'USD' });

    const two = await completed(run({ operation: 'enhance', image_url: source, scale: 2, output_format: 'webp' }));
    meta = await sharp(two.output.artifacts[0].data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 80, 64]);
  });

  it('recolours what the prompt names towards the palette through search-and-recolor', async () => {
    const result = await completed(
      run({ operation: 'color_match', image_url: await pngDataUrl(50, 20), palette: ['#1d3557'], prompt: 'the car' }),
    );
    expect(seen[seen.length - 1].url).toBe('/v2beta/stable-image/edit/search-and-recolor');
    expect(lastFields()).toMatchObject({ select_prompt: 'the car', prompt: '#1d3557 colours', output_format: 'png' });
    expect(result.output.data).toMatchObject({ width: 50, height: 20 });
    expect(result.cost).toEqual({ amount: 0.05, currency: 'USD' });
  });

  it('says at submit what it does not do', () => {
    const adapter = adapterWith();
    const fieldsOf = (input: EditInput) =>
      adapter.validate({ type: TaskType.ImageEdit, input }).map((problem) => problem.field);
    const image_url = 'https://example.com/a.png';
    expect(fieldsOf({ operation: 'stencil', image_url })).toEqual(['operation']);
    expect(fieldsOf({ operation: 'generate', prompt: 'x' })).toEqual(['operation']);
    expect(fieldsOf({ operation: 'enhance', image_url, strength: 0.3 })).toEqual(['strength']);
    expect(fieldsOf({ operation: 'enhance', image_url })).toEqual([]);
    expect(fieldsOf({ operation: 'color_match', image_url, reference_url: image_url })).toEqual([
      'reference_url',
      'prompt',
    ]);
    expect(fieldsOf({ operation: 'color_match', image_url, palette: ['#000000'], prompt: 'sky' })).toEqual([]);
  });

  it('refuses an image the fast upscaler cannot take before calling, and maps moderation and 429', async () => {
    const tooBig = await providerError(run({ operation: 'enhance', image_url: await pngDataUrl(1600, 20) }));
    expect([tooBig.code, tooBig.retryable]).toEqual([ProviderErrorCode.InputInvalid, false]);
    expect(stats.requests.get('POST /v2beta/stable-image/upscale/fast')).toBeUndefined();

    const refused = await providerError(
      run({ operation: 'color_match', image_url: await pngDataUrl(8, 8), palette: ['#000000'], prompt: 'forbidden' }),
    );
    expect([refused.code, refused.retryable, refused.status]).toEqual([ProviderErrorCode.ContentPolicy, false, 403]);

    knobs.rateLimitRate = 1;
    const limited = await providerError(run({ operation: 'enhance', image_url: await pngDataUrl(40, 40) }));
    expect([limited.code, limited.retryable, limited.retryAfterMs]).toEqual([
      ProviderErrorCode.RateLimited,
      true,
      1000,
    ]);
  });
});
