import sharp from 'sharp';
import { TestApp } from './support/test-app';

const EDIT = '/api/v1/media/images/edit';

async function pngDataUrl(width: number, height: number, colour = '#2a9d8f'): Promise<string> {
  const png = await sharp({ create: { width, height, channels: 3, background: colour } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

describe('image_edit on the remote providers (sandbox)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ sandbox: true });
  });
  afterAll(async () => {
    await t.close();
  });

  async function run(body: Record<string, unknown>) {
    const res = await t.request('POST', EDIT, { body });
    expect([res.status, res.body.message]).toEqual([202, undefined]);
    return t.waitForTask(res.body.id as string, (x) => x.status === 'completed' || x.status === 'failed', 20000);
  }

  /** The task's one file, read back through the platform's storage route. */
  async function outputImage(task: { output: { files: { url: string; content_type: string }[] } }) {
    const [file] = task.output.files;
    const res = await fetch(`${t.baseUrl}${file.url}`);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    return { file, meta: await sharp(bytes).metadata() };
  }

  it('generates on Gemini: a real PNG whose size is in the output', async () => {
    const task = await run({ operation: 'generate', prompt: 'a koi in fine-line style', provider: 'gemini' });
    expect(task).toMatchObject({ status: 'completed', provider: 'gemini' });
    expect(task.output).toMatchObject({
      sandbox: true,
      operation: 'generate',
      width: 1024,
      height: 1024,
      format: 'png',
    });
    expect(task.cost.amount).toBeGreaterThanOrEqual(0.039);
    const { file, meta } = await outputImage(task);
    expect(file.content_type).toBe('image/png');
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1024, 1024]);
  });

  it('enhances on Gemini to the source size times scale', async () => {
    const task = await run({ operation: 'enhance', image_url: await pngDataUrl(50, 40), scale: 2, provider: 'gemini' });
    expect(task).toMatchObject({ status: 'completed', provider: 'gemini' });
    expect(task.output).toMatchObject({ width: 100, height: 80 });
    const { meta } = await outputImage(task);
    expect([meta.width, meta.height]).toEqual([100, 80]);
  });

  it('generates on OpenAI image edits from a reference: a real PNG whose size is in the output', async () => {
    const task = await run({
      operation: 'generate',
      prompt: 'a koi poster',
      reference_urls: [await pngDataUrl(30, 20)],
      provider: 'openai-images',
    });
    expect(task).toMatchObject({ status: 'completed', provider: 'openai-images' });
    expect(task.output).toMatchObject({
      sandbox: true,
      endpoint: 'edits',
      model: 'gpt-image-1',
      width: 1024,
      height: 1024,
    });
    const { file, meta } = await outputImage(task);
    expect(file.content_type).toBe('image/png');
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1024, 1024]);
  });

  it('enhances on Stability through its fast upscaler, ×2 made from the ×4', async () => {
    const task = await run({ operation: 'enhance', image_url: await pngDataUrl(40, 36), provider: 'stability' });
    expect(task).toMatchObject({ status: 'completed', provider: 'stability', cost: { amount: 0.02 } });
    expect(task.output).toMatchObject({ endpoint: 'upscale/fast', width: 80, height: 72 });
    const { meta } = await outputImage(task);
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 80, 72]);
  });

  it('answers 400 at submit for an operation the pinned provider does not offer', async () => {
    const res = await t.request('POST', EDIT, {
      body: { operation: 'enhance', image_url: await pngDataUrl(8, 8), provider: 'openai-images' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(['operation']);
  });

  it('fails a refused prompt on Gemini at once, with content_policy', async () => {
    const task = await run({ operation: 'generate', prompt: 'something forbidden', provider: 'gemini' });
    expect(task).toMatchObject({ status: 'failed', attempts: 1 });
    expect(task.error.code).toBe('content_policy');
  });
});
