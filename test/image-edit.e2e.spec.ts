import { createServer, Server } from 'node:http';
import sharp from 'sharp';
import { ProviderContext, StartOutcome } from '../src/providers/provider.port';
import { TaskType } from '../src/tasks/task.enums';
import { createTestDatabase, dropTestDatabase } from './support/databases';
import {
  darkest,
  decode,
  labDistance,
  laplacianVariance,
  meanLab,
  meanRgb,
  photo,
  scene,
  twoToneShare,
} from './support/images';
import { ScriptedProvider } from './support/scripted-provider';
import { deleteRedisKeys, TestApp } from './support/test-app';

const EDIT = '/api/v1/media/images/edit';
/** A base64 PNG signature and padding: the DTO checks the form, the size is checked at submit. */
const dataUrl = (bytes: number) => `data:image/png;base64,${Buffer.alloc(bytes, 7).toString('base64')}`;

describe('image_edit submissions', () => {
  let t: TestApp;

  beforeAll(async () => {
    // A provider that runs every operation (generate too), so these specs are about the submit checks alone.
    t = await TestApp.start({
      env: { IMAGE_INLINE_MAX_BYTES: String(2 * 1024 * 1024) },
      providers: [new ScriptedProvider('image-remote', [TaskType.ImageEdit])],
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const fields = (res: { body: { errors?: { field: string; message: string }[] } }) =>
    [...new Set((res.body.errors ?? []).map((e) => e.field))].sort();

  /** An upload of alice's (a real one: submit checks that an upload: reference is the user's). */
  async function uploaded(): Promise<string> {
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')]), 'a.png');
    const res = await fetch(`${t.baseUrl}/api/v1/media/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token('alice')}` },
      body: form,
    });
    return ((await res.json()) as { url: string }).url;
  }

  it('accepts each operation with its own fields, as an image_edit task', async () => {
    for (const body of [
      { operation: 'stencil', image_url: 'https://example.com/a.png', style: 'outline', thickness: 3 },
      { operation: 'enhance', image_url: await uploaded(), scale: 4, strength: 0.3 },
      { operation: 'generate', prompt: 'a koi', reference_urls: ['https://example.com/r.png', dataUrl(10)] },
      { operation: 'color_match', image_url: dataUrl(10), palette: ['#112233', '#abcdef'], strength: 0.5 },
    ]) {
      const res = await t.request('POST', EDIT, { body });
      expect([res.status, res.body.message]).toEqual([202, undefined]);
      expect(res.body.type).toBe('image_edit');
    }
  });

  it('answers 400 naming each field that is missing, misplaced or malformed for the operation', async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ operation: 'stencil' }, ['image_url']],
      [{ operation: 'generate' }, ['prompt']],
      [{ operation: 'enhance', image_url: 'https://example.com/a.png', style: 'outline' }, ['style']],
      [{ operation: 'stencil', image_url: 'https://example.com/a.png', scale: 2 }, ['scale']],
      [{ operation: 'color_match', image_url: 'https://example.com/a.png' }, ['operation']],
      [{ operation: 'enhance', image_url: 'ftp://example.com/a.png' }, ['image_url']],
      [{ operation: 'enhance', image_url: 'upload:nope' }, ['image_url']],
      [
        { operation: 'generate', prompt: 'x', reference_urls: Array(5).fill('https://example.com/r.png') },
        ['reference_urls'],
      ],
      [{ operation: 'blur', image_url: 'https://example.com/a.png' }, ['operation']],
    ];
    for (const [body, expected] of cases) {
      const res = await t.request('POST', EDIT, { body });
      expect([JSON.stringify(body), res.status, fields(res)]).toEqual([JSON.stringify(body), 400, expected]);
    }
  });

  it('takes inline images up to IMAGE_INLINE_MAX_BYTES on this route only, and names the field past it', async () => {
    // 1.5 MiB of image: over every other route's 1 MiB, within this one's limit.
    const big = await t.request('POST', EDIT, {
      body: { operation: 'enhance', image_url: dataUrl(1.5 * 1024 * 1024) },
    });
    expect(big.status).toBe(202);
    const elsewhere = await t.request('POST', '/api/v1/media/subtitles/generate', {
      body: { text: 'x'.repeat(1.5 * 1024 * 1024) },
    });
    expect(elsewhere.status).toBe(413);
    const over = await t.request('POST', EDIT, {
      body: { operation: 'color_match', image_url: dataUrl(1024 * 1024), reference_url: dataUrl(1.2 * 1024 * 1024) },
    });
    expect(over.status).toBe(400);
    expect(fields(over)).toEqual(['reference_url']);
    expect(over.body.errors[0].message).toContain('IMAGE_INLINE_MAX_BYTES');
  });

  it('checks the addresses of http(s) media against the URL guard, not upload: or data: references', async () => {
    const res = await t.request('POST', EDIT, {
      body: {
        operation: 'generate',
        prompt: 'x',
        reference_urls: ['https://example.com/r.png', 'https://user:pw@example.com/x'],
      },
    });
    expect(res.status).toBe(400);
    expect(fields(res)).toEqual(['reference_urls[1]']);
  });
});

/** Serves test images over loopback HTTP, as a user's image host would. */
async function imageServer(files: Record<string, Buffer>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (file) return void res.writeHead(200, { 'content-type': 'image/png' }).end(file);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe('image_edit on image-local (sharp on the worker)', () => {
  let t: TestApp;
  let images: { server: Server; url: string };
  const png = (data: Buffer) => `data:image/png;base64,${data.toString('base64')}`;

  beforeAll(async () => {
    images = await imageServer({
      '/scene.png': await scene(),
      '/blurred.png': await sharp(await photo())
        .blur(1.2)
        .png()
        .toBuffer(),
      '/warm.png': await photo(200, 150, [1.15, 0.8, 0.6]),
      '/cool.png': await photo(160, 120, [0.6, 0.85, 1.2]),
    });
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
    images.server.close();
  });

  async function edit(body: Record<string, unknown>) {
    const res = await t.request('POST', EDIT, { body });
    expect(res.status).toBe(202);
    return t.waitForTask(res.body.id, (x) => ['completed', 'failed'].includes(x.status), 20000);
  }

  const fileOf = async (task: { output: { files: { url: string }[] } }) =>
    Buffer.from(await (await fetch(`${t.baseUrl}${task.output.files[0].url}`)).arrayBuffer());

  it('makes a two-tone stencil that keeps the subject’s edges, with its size and format in the output', async () => {
    const task = await edit({ operation: 'stencil', image_url: `${images.url}/scene.png`, style: 'outline' });
    expect([task.status, task.provider]).toEqual(['completed', 'image-local']);
    expect(task.output).toMatchObject({ width: 240, height: 180, format: 'png', operation: 'stencil' });
    expect(task.output.files[0]).toMatchObject({ content_type: 'image/png', filename: 'stencil.png' });
    const image = await decode(await fileOf(task));
    expect(twoToneShare(image)).toBeGreaterThanOrEqual(0.95);
    // The ring around (72, 90), radius 54, and the square's left side at x = 144 are drawn; flat areas are not.
    expect(darkest(image, 126, 90)).toBeLessThan(64);
    expect(darkest(image, 144, 90)).toBeLessThan(64);
    expect(darkest(image, 72, 90, 2)).toBeGreaterThan(192);
  });

  it('enhances: twice the size, sharper than a plain upscale, about the same mean colour', async () => {
    const source = await (await fetch(`${images.url}/blurred.png`)).arrayBuffer().then(Buffer.from);
    const task = await edit({ operation: 'enhance', image_url: png(source) });
    expect([task.status, task.provider]).toEqual(['completed', 'image-local']);
    expect(task.output).toMatchObject({ width: 400, height: 300, format: 'png', operation: 'enhance' });
    const enhanced = await fileOf(task);
    const plain = await sharp(source).resize(400, 300, { kernel: 'lanczos3' }).png().toBuffer();
    expect(laplacianVariance(await decode(enhanced))).toBeGreaterThan(1.5 * laplacianVariance(await decode(plain)));
    const [before, after] = [await meanRgb(source), await meanRgb(enhanced)];
    after.forEach((v, c) => expect(Math.abs(v - before[c])).toBeLessThan(12));
  });

  it('reads an uploaded image (upload:<id>) from storage, as its owner only', async () => {
    const source = await photo(120, 90);
    const form = new FormData();
    form.append('file', new Blob([source]), 'photo.png');
    const uploaded = await fetch(`${t.baseUrl}/api/v1/media/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token('alice')}` },
      body: form,
    });
    expect(uploaded.status).toBe(201);
    const { url } = (await uploaded.json()) as { url: string };
    const task = await edit({ operation: 'enhance', image_url: url, scale: 2 });
    expect([task.status, task.provider, task.error]).toEqual(['completed', 'image-local', null]);
    expect(task.output).toMatchObject({ width: 240, height: 180 });
    const other = await t.request('POST', EDIT, { as: 'mallory', body: { operation: 'enhance', image_url: url } });
    expect(other.status).toBe(400);
    expect(other.body.errors.map((e: { field: string }) => e.field)).toEqual(['image_url']);
  });

  it('moves the mean Lab colour at least 80 % of the way to the reference’s', async () => {
    const task = await edit({
      operation: 'color_match',
      image_url: `${images.url}/warm.png`,
      reference_url: `${images.url}/cool.png`,
      output_format: 'webp',
    });
    expect([task.status, task.provider]).toEqual(['completed', 'image-local']);
    expect(task.output).toMatchObject({ width: 200, height: 150, format: 'webp', operation: 'color_match' });
    const fetchImage = async (path: string) => Buffer.from(await (await fetch(`${images.url}${path}`)).arrayBuffer());
    const [before, target, after] = await Promise.all([
      meanLab(await fetchImage('/warm.png')),
      meanLab(await fetchImage('/cool.png')),
      meanLab(await fileOf(task)),
    ]);
    expect(labDistance(after, target)).toBeLessThanOrEqual(0.2 * labDistance(before, target));
  });

  it('fails a broken image for good, as input_invalid naming the field', async () => {
    const task = await edit({
      operation: 'enhance',
      image_url: `data:image/png;base64,${Buffer.from('no').toString('base64')}`,
    });
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('input_invalid');
    expect(task.error.message).toMatch(/^image_url: /);
    expect(task.attempts).toBe(1);
  });
});

describe('image_edit with the result cache on', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ env: { CACHE_ENABLED: 'true' } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers the same prompt-free enhance of the same image from the cache, and a different strength afresh', async () => {
    const image = `data:image/png;base64,${(await photo(64, 48)).toString('base64')}`;
    const run = async (body: Record<string, unknown>) => {
      const res = await t.request('POST', EDIT, { body: { operation: 'enhance', image_url: image, ...body } });
      expect(res.status).toBe(202);
      return t.waitForTask(res.body.id, (x) => ['completed', 'failed'].includes(x.status), 20000);
    };
    const first = await run({});
    const again = await run({});
    const other = await run({ strength: 0.9 });
    expect([first.status, first.cached]).toEqual(['completed', false]);
    expect([again.status, again.cached]).toEqual(['completed', true]);
    expect(again.output).toMatchObject({ width: first.output.width, height: first.output.height });
    expect([other.status, other.cached]).toEqual(['completed', false]);
  });

  it('runs image_edit items of a batch like any other, each checked by its operation', async () => {
    const image = `data:image/png;base64,${(await photo(48, 36)).toString('base64')}`;
    const bad = await t.request('POST', '/api/v1/media/batch', {
      body: [
        { task_type: 'image_edit', input_data: { operation: 'stencil', image_url: image } },
        { task_type: 'image_edit', input_data: { operation: 'generate' } },
      ],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('prompt is required for operation generate');
    const res = await t.request('POST', '/api/v1/media/batch', {
      body: [
        { task_type: 'image_edit', input_data: { operation: 'stencil', image_url: image } },
        { task_type: 'image_edit', input_data: { operation: 'color_match', image_url: image, palette: ['#204080'] } },
      ],
    });
    expect(res.status).toBe(202);
    const tasks = await Promise.all(
      (res.body.tasks as { id: string }[]).map((task) =>
        t.waitForTask(task.id, (x) => ['completed', 'failed'].includes(x.status), 20000),
      ),
    );
    expect(tasks.map((x) => [x.status, x.provider, x.output?.operation])).toEqual([
      ['completed', 'image-local', 'stencil'],
      ['completed', 'image-local', 'color_match'],
    ]);
  });
});

/** Counts the tasks of each image operation it runs at once (a slowed provider with no cap of its own). */
class OperationMeter extends ScriptedProvider {
  readonly running = new Map<string, number>();
  readonly most = new Map<string, number>();
  readonly finished = new Map<string, number[]>();

  override async start(ctx: ProviderContext): Promise<StartOutcome> {
    const operation = (ctx.input as { operation: string }).operation;
    this.running.set(operation, (this.running.get(operation) ?? 0) + 1);
    this.most.set(operation, Math.max(this.most.get(operation) ?? 0, this.running.get(operation)!));
    try {
      return await super.start(ctx);
    } finally {
      this.running.set(operation, this.running.get(operation)! - 1);
      this.finished.set(operation, [...(this.finished.get(operation) ?? []), Date.now()]);
    }
  }
}

describe('per-operation caps of image_edit (IMAGE_EDIT_CONCURRENCY)', () => {
  it('never runs more than 5 stencils at once across two workers, and enhance tasks are not held behind them', async () => {
    // Each call lasts 500 ms: long enough that five admitted one after another overlap on a busy machine too (at
    // 250 ms, two processes on the Postgres queue backend once had at most four running at one instant).
    const meter = new OperationMeter('slow-images', [TaskType.ImageEdit], [{ delayMs: 500 }]);
    const database = await createTestDatabase();
    const redisPrefix = `opcap${process.pid}`;
    // Capped tasks look again every 200 ms (PROVIDER_POLL_SCALE), as a provider's capped tasks do.
    const env = { WORKER_CONCURRENCY: '10', PROVIDER_POLL_SCALE: '0.2' };
    const a = await TestApp.start({ database, redisPrefix, providers: [meter], env });
    const b = await TestApp.start({ database, redisPrefix, providers: [meter], env: { ...env, APP_ROLE: 'worker' } });
    try {
      const submit = async (operation: string, i: number) => {
        const res = await a.request('POST', EDIT, {
          body: { operation, image_url: `https://example.com/${operation}-${i}.png` },
        });
        expect(res.status).toBe(202);
        return res.body.id as string;
      };
      const stencils = await Promise.all(Array.from({ length: 30 }, (_, i) => submit('stencil', i)));
      const enhances = await Promise.all(Array.from({ length: 3 }, (_, i) => submit('enhance', i)));
      const done = (ids: string[]) =>
        Promise.all(ids.map((id) => a.waitForTask(id, (x) => x.status === 'completed', 30000)));
      await Promise.all([done(stencils), done(enhances)]);
      expect(meter.most.get('stencil')).toBe(5);
      expect(meter.most.get('enhance')).toBeLessThanOrEqual(3);
      expect(new Set(meter.calls.map((c) => c.taskId)).size).toBe(33);
      // 30 stencils five at a time take six rounds; the enhance tasks, submitted last, run beside the first ones.
      const lastEnhance = Math.max(...meter.finished.get('enhance')!);
      const stencilEnds = meter.finished.get('stencil')!.sort((x, y) => x - y);
      expect(lastEnhance).toBeLessThan(stencilEnds[stencilEnds.length - 10]);
    } finally {
      await b.close();
      await a.close();
      await dropTestDatabase(database.name);
      await deleteRedisKeys(redisPrefix);
    }
  });
});
