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
import { createOpenAiEmulator } from '../../../../sandbox/emulators/openai.emulator';
import { AppConfig } from '../../../config/app-config';
import { TaskInputOf } from '../../../tasks/task-input';
import { TaskType } from '../../../tasks/task.enums';
import { ProviderErrorCode } from '../../provider.port';
import { OpenAiImagesAdapter } from './openai-images.adapter';

const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS };
const stats = new EmulatorStats();
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
let emulator: FastifyInstance;
let baseUrl: string;

type EditInput = TaskInputOf<TaskType.ImageEdit>;

function adapterWith(env: Record<string, string> = {}): OpenAiImagesAdapter {
  return new OpenAiImagesAdapter(
    AppConfig.fromEnv({
      OPENAI_API_KEY: SANDBOX_API_KEY,
      OPENAI_BASE_URL: `${baseUrl}/v1`,
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
  emulator = createOpenAiEmulator({ knobs, stats });
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

describe('OpenAiImagesAdapter on image_edit', () => {
  it('generates from references through /images/edits: multipart image[] parts, gpt-image-1, b64 back', async () => {
    const refs = [await pngDataUrl(30, 20), await pngDataUrl(16, 16, '#e9c46a')];
    const result = await completed(run({ operation: 'generate', prompt: 'a koi poster', reference_urls: refs }));

    const request = seen[seen.length - 1];
    expect(request.url).toBe('/v1/images/edits');
    expect(request.headers.authorization).toBe(`Bearer ${SANDBOX_API_KEY}`);
    expect(request.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    const fields = lastFields();
    expect(fields).toMatchObject({ model: 'gpt-image-1', n: '1', size: '1024x1024', quality: 'medium' });
    expect(fields.prompt).toContain('a koi poster');
    expect(fields.input_fidelity).toBeUndefined();
    expect(fields['image[]']).toEqual([
      expect.objectContaining({ filename: 'image-1.png', type: 'image/png' }),
      expect.objectContaining({ filename: 'image-2.png', type: 'image/png' }),
    ]);

    const [artifact] = result.output.artifacts;
    const meta = await sharp(artifact.data).metadata();
    expect([artifact.contentType, meta.format, meta.width, meta.height]).toEqual(['image/png', 'png', 1024, 1024]);
    expect(result.output.data).toMatchObject({ endpoint: 'edits', width: 1024, height: 1024 });
    // From the answer's usage: prompt text, two input images, a square medium image out.
    expect(result.cost!.amount).toBeGreaterThan(0.042);
    expect(result.cost!.amount).toBeLessThan(0.07);
  });

  it('generates without references through /images/generations, in the asked format', async () => {
    const result = await completed(run({ operation: 'generate', prompt: 'a lighthouse', output_format: 'webp' }));
    expect(seen[seen.length - 1].url).toBe('/v1/images/generations');
    expect(lastFields()).toEqual({
      model: 'gpt-image-1',
      prompt: 'a lighthouse',
      n: 1,
      size: '1024x1024',
      quality: 'medium',
      output_format: 'webp',
    });
    const [artifact] = result.output.artifacts;
    expect(artifact.contentType).toBe('image/webp');
    expect((await sharp(artifact.data).metadata()).format).toBe('webp');
  });

  it('edits the source for stencil and color_match, keeping its size, with high input fidelity', async () => {
    const source = await pngDataUrl(60, 30);
    const stencil = await completed(
      run({ operation: 'stencil', image_url: source, background: 'transparent', style: 'topographic' }),
    );
    expect(lastFields()).toMatchObject({ size: '1536x1024', input_fidelity: 'high', background: 'transparent' });
    expect(lastFields().prompt).toContain('topographic stencil');
    expect(stencil.output.data).toMatchObject({ operation: 'stencil', width: 60, height: 30 });

    await completed(run({ operation: 'color_match', image_url: source, reference_url: await pngDataUrl(8, 8) }));
    expect((lastFields()['image[]'] as unknown[]).length).toBe(2);
  });

  it('does not offer enhance, nor a transparent jpeg, and leaves image_generation checks as they were', () => {
    const adapter = adapterWith();
    const fieldsOf = (input: EditInput) =>
      adapter.validate({ type: TaskType.ImageEdit, input }).map((problem) => problem.field);
    expect(fieldsOf({ operation: 'enhance', image_url: 'https://example.com/a.png' })).toEqual(['operation']);
    expect(
      fieldsOf({
        operation: 'stencil',
        image_url: 'https://example.com/a.png',
        background: 'transparent',
        output_format: 'jpeg',
      }),
    ).toEqual(['output_format']);
    expect(fieldsOf({ operation: 'generate', prompt: 'x' })).toEqual([]);
    expect(
      adapter.validate({ type: TaskType.ImageGeneration, input: { prompt: 'x', model: 'dall-e-3', n: 2 } }),
    ).toEqual([expect.objectContaining({ field: 'n' })]);
  });

  it('maps a safety refusal to content_policy, 429 to a transient error with Retry-After, a bad key to auth', async () => {
    const refs = [await pngDataUrl(8, 8)];
    const refused = await providerError(
      run({ operation: 'generate', prompt: 'something forbidden', reference_urls: refs }),
    );
    expect([refused.code, refused.retryable]).toEqual([ProviderErrorCode.ContentPolicy, false]);

    knobs.rateLimitRate = 1;
    const limited = await providerError(run({ operation: 'generate', prompt: 'x', reference_urls: refs }));
    expect([limited.code, limited.retryable, limited.retryAfterMs]).toEqual([
      ProviderErrorCode.RateLimited,
      true,
      1000,
    ]);
    knobs.rateLimitRate = 0;

    const badKey = await providerError(
      run(
        { operation: 'generate', prompt: 'x', reference_urls: refs },
        adapterWith({ OPENAI_API_KEY: 'sk-wrong-key-123' }),
      ),
    );
    expect([badKey.code, badKey.retryable]).toEqual([ProviderErrorCode.AuthFailed, false]);
    expect(badKey.message).not.toContain('sk-wrong-key-123');
  });
});
