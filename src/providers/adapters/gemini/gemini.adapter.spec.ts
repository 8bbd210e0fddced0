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
import { createGeminiEmulator } from '../../../../sandbox/emulators/gemini.emulator';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode } from '../../provider.port';
import { GeminiAdapter } from './gemini.adapter';

const ROUTE = 'POST /v1beta/models/{model}:generateContent';
const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
const seen: { url: string; headers: IncomingHttpHeaders; body: unknown }[] = [];
let emulator: FastifyInstance;
let baseUrl: string;

type EditInput = TaskInputOf<TaskType.ImageEdit>;

function adapterWith(env: Record<string, string> = {}): GeminiAdapter {
  return new GeminiAdapter(
    AppConfig.fromEnv({
      GEMINI_API_KEY: SANDBOX_API_KEY,
      GEMINI_BASE_URL: baseUrl,
      PROVIDER_HTTP_TIMEOUT_MS: '5000',
      ...env,
    }),
  );
}

function run(input: EditInput, adapter = adapterWith()) {
  return adapter.start(ctxFor({ type: TaskType.ImageEdit, input }));
}

const lastRequest = () => seen[seen.length - 1];
type SentBody = {
  contents: { parts: ({ text: string } | { inlineData: { mimeType: string; data: string } })[] }[];
  generationConfig: { responseModalities: string[] };
};

beforeAll(async () => {
  emulator = createGeminiEmulator({ knobs, stats });
  emulator.addHook('preHandler', async (req) => {
    seen.push({ url: req.url, headers: req.headers, body: req.body });
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

describe('GeminiAdapter', () => {
  it('generates from a prompt alone: model path, key header, image output asked for, a real PNG back', async () => {
    const result = await completed(run({ operation: 'generate', prompt: 'a koi in fine-line style' }));

    const request = lastRequest();
    expect(request.url).toBe('/v1beta/models/gemini-2.5-flash-image:generateContent');
    expect(request.headers['x-goog-api-key']).toBe(SANDBOX_API_KEY);
    expect(request.headers.authorization).toBeUndefined();
    const body = request.body as SentBody;
    expect(body.generationConfig.responseModalities).toEqual(['TEXT', 'IMAGE']);
    expect(body.contents[0].parts).toEqual([{ text: 'a koi in fine-line style' }]);

    const [artifact] = result.output.artifacts;
    expect(artifact.contentType).toBe('image/png');
    const meta = await sharp(artifact.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1024, 1024]);
    expect(result.output.data).toMatchObject({ operation: 'generate', width: 1024, height: 1024, format: 'png' });
    // 1290 image tokens are $0.039; the prompt's few tokens add a fraction of a cent.
    expect(result.cost!.amount).toBeGreaterThanOrEqual(0.039);
    expect(result.cost!.amount).toBeLessThan(0.04);
  });

  it('sends reference images inline, after the instruction, and the model named in GEMINI_IMAGE_MODEL', async () => {
    const refs = [await pngDataUrl(40, 30), await pngDataUrl(20, 20, '#ff0000')];
    await completed(
      run(
        { operation: 'generate', prompt: 'a poster', reference_urls: refs },
        adapterWith({ GEMINI_IMAGE_MODEL: 'gemini-3-pro-image-preview' }),
      ),
    );
    const request = lastRequest();
    expect(request.url).toBe('/v1beta/models/gemini-3-pro-image-preview:generateContent');
    const parts = (request.body as SentBody).contents[0].parts;
    expect(parts).toHaveLength(3);
    expect((parts[0] as { text: string }).text).toContain('Use the 2 attached images as reference');
    for (const [i, ref] of refs.entries()) {
      expect(parts[i + 1]).toEqual({ inlineData: { mimeType: 'image/png', data: ref.split(',')[1] } });
    }
  });

  it('enhances into the source size times scale, and stencils at the source size in the asked format', async () => {
    const source = await pngDataUrl(40, 30);
    const enhanced = await completed(run({ operation: 'enhance', image_url: source, scale: 4 }));
    const meta = await sharp(enhanced.output.artifacts[0].data).metadata();
    expect([meta.width, meta.height]).toEqual([160, 120]);
    expect((lastRequest().body as SentBody).contents[0].parts[0]).toMatchObject({
      text: expect.stringContaining('Restore and enhance') as string,
    });

    const stencil = await completed(
      run({ operation: 'stencil', image_url: source, style: 'outline', thickness: 4, output_format: 'jpeg' }),
    );
    const [artifact] = stencil.output.artifacts;
    expect(artifact.contentType).toBe('image/jpeg');
    const stencilMeta = await sharp(artifact.data).metadata();
    expect([stencilMeta.format, stencilMeta.width, stencilMeta.height]).toEqual(['jpeg', 40, 30]);
    const text = ((lastRequest().body as SentBody).contents[0].parts[0] as { text: string }).text;
    expect(text).toContain('outline stencil');
    expect(text).toContain('about 4 px thick');
  });

  it('recolours towards a palette or a reference image, both images sent for a reference', async () => {
    const source = await pngDataUrl(32, 32);
    await completed(run({ operation: 'color_match', image_url: source, palette: ['#1d3557', '#e63946'] }));
    let parts = (lastRequest().body as SentBody).contents[0].parts;
    expect(parts).toHaveLength(2);
    expect((parts[0] as { text: string }).text).toContain('#1d3557, #e63946');

    await completed(
      run({ operation: 'color_match', image_url: source, reference_url: await pngDataUrl(8, 8), strength: 0.5 }),
    );
    parts = (lastRequest().body as SentBody).contents[0].parts;
    expect(parts).toHaveLength(3);
    expect((parts[0] as { text: string }).text).toContain('50% of the way');
  });

  it('refuses a transparent stencil at submit, as it makes opaque images only', () => {
    const problems = adapterWith().validate({
      type: TaskType.ImageEdit,
      input: { operation: 'stencil', image_url: 'https://example.com/a.png', background: 'transparent' },
    });
    expect(problems.map((p) => p.field)).toEqual(['background']);
  });

  it('turns every answer without an image into a permanent error with its own code', async () => {
    const blocked = await providerError(run({ operation: 'generate', prompt: 'something forbidden' }));
    expect([blocked.code, blocked.retryable]).toEqual([ProviderErrorCode.ContentPolicy, false]);
    expect(blocked.message).toContain('PROHIBITED_CONTENT');

    const unsafe = await providerError(run({ operation: 'generate', prompt: 'an unsafe picture' }));
    expect([unsafe.code, unsafe.retryable]).toEqual([ProviderErrorCode.ContentPolicy, false]);
    expect(unsafe.message).toContain('IMAGE_SAFETY');

    const textOnly = await providerError(run({ operation: 'generate', prompt: 'answer in text only' }));
    expect([textOnly.code, textOnly.retryable]).toEqual([ProviderErrorCode.NoImage, false]);
    expect(textOnly.message).toContain('will not draw it');
  });

  it('maps statuses: a wrong key is an auth failure, 429 and 503 are transient with the delay Google gives', async () => {
    const badKey = await providerError(
      run({ operation: 'generate', prompt: 'x' }, adapterWith({ GEMINI_API_KEY: 'nope' })),
    );
    expect([badKey.code, badKey.retryable, badKey.status]).toEqual([ProviderErrorCode.AuthFailed, false, 400]);
    expect(badKey.message).not.toContain('nope');

    knobs.rateLimitRate = 1;
    const limited = await providerError(run({ operation: 'generate', prompt: 'x' }));
    expect([limited.code, limited.retryable, limited.retryAfterMs]).toEqual([
      ProviderErrorCode.RateLimited,
      true,
      1000,
    ]);

    knobs.rateLimitRate = 0;
    knobs.failureRate = 1;
    const down = await providerError(run({ operation: 'generate', prompt: 'x' }));
    expect([down.code, down.retryable, down.status]).toEqual([ProviderErrorCode.Unavailable, true, 503]);

    knobs.failureRate = 0;
    const unknownModel = await providerError(
      run({ operation: 'generate', prompt: 'x' }, adapterWith({ GEMINI_IMAGE_MODEL: 'gemini-2.5-pro' })),
    );
    expect([unknownModel.code, unknownModel.retryable]).toEqual([ProviderErrorCode.NotFound, false]);
  });

  it('refuses an input that is not an image before calling Gemini', async () => {
    const before = stats.requests.get(ROUTE) ?? 0;
    const err = await providerError(
      run({ operation: 'enhance', image_url: `data:image/png;base64,${Buffer.from('not a png').toString('base64')}` }),
    );
    expect([err.code, err.retryable]).toEqual([ProviderErrorCode.InputInvalid, false]);
    expect(err.message).toContain('image_url');
    expect(stats.requests.get(ROUTE) ?? 0).toBe(before);
  });
});
