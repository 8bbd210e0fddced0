import sharp from 'sharp';
import { decode, labDistance, meanLab, photo, scene, twoToneShare } from './support/images';
import { TestApp } from './support/test-app';

/** The front end polls every 2 s; the test scales that down. */
const POLL_MS = 2000 / 40;

describe('the image app’s routes (generate-async, queue status, queue stats)', () => {
  let t: TestApp;
  const png = (data: Buffer) => `data:image/png;base64,${data.toString('base64')}`;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
  });

  /** The front end's loop: submit, poll the status until it ends, read `result.image`, fetch it. */
  async function frontEnd(queue: string, body: Record<string, unknown>) {
    const submitted = await t.request('POST', `/api/${queue}/generate-async`, { body });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toEqual({ success: true, jobId: expect.any(String), message: expect.any(String) });
    const seen: string[] = [];
    let status: { status: number; body: any } = { status: 0, body: undefined };
    for (let i = 0; i < 400; i++) {
      status = await t.request('GET', `/api/queue/status/${submitted.body.jobId}?queue=${queue}`);
      expect(status.status).toBe(200);
      if (seen[seen.length - 1] !== status.body.status) seen.push(status.body.status);
      expect(status.body.progress).toBeGreaterThanOrEqual(0);
      expect(status.body.progress).toBeLessThanOrEqual(100);
      if (['completed', 'failed'].includes(status.body.status)) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return { jobId: submitted.body.jobId as string, seen, final: status.body };
  }

  it('runs a stencil from a base64 image to an image the front end can fetch', async () => {
    const { jobId, seen, final } = await frontEnd('stencil', {
      image: png(await scene()),
      style: 'outline',
      promptDetails: 'a ring and a square',
    });
    expect(seen[seen.length - 1]).toBe('completed');
    seen.forEach((s) => expect(['waiting', 'active', 'completed']).toContain(s));
    expect(final).toEqual({
      jobId,
      status: 'completed',
      progress: 100,
      result: { image: expect.any(String) },
      error: null,
    });
    const image = await fetch(`${t.baseUrl}${final.result.image}`);
    expect([image.status, image.headers.get('content-type')]).toEqual([200, 'image/png']);
    const pixels = await decode(Buffer.from(await image.arrayBuffer()));
    expect([pixels.width, pixels.height]).toEqual([240, 180]);
    expect(twoToneShare(pixels)).toBeGreaterThanOrEqual(0.95);
    // The same job through the platform's own API: an image_edit task with the app's fields mapped.
    const task = await t.request('GET', `/api/v1/media/tasks/${jobId}`);
    expect(task.body.input).toMatchObject({ operation: 'stencil', style: 'outline', prompt: 'a ring and a square' });
  });

  it('runs enhance and color-match with the app’s bodies', async () => {
    const enhanced = await frontEnd('enhance', { image: png(await photo(80, 60)) });
    expect(enhanced.final.status).toBe('completed');
    const big = await sharp(
      Buffer.from(await (await fetch(`${t.baseUrl}${enhanced.final.result.image}`)).arrayBuffer()),
    ).metadata();
    expect([big.width, big.height]).toEqual([160, 120]);

    const warm = await photo(120, 90, [1.15, 0.8, 0.6]);
    const cool = await photo(120, 90, [0.6, 0.85, 1.2]);
    const matched = await frontEnd('color-match', { image: png(warm), referenceImage: png(cool) });
    expect(matched.final.status).toBe('completed');
    const after = await meanLab(
      Buffer.from(await (await fetch(`${t.baseUrl}${matched.final.result.image}`)).arrayBuffer()),
    );
    const [before, target] = [await meanLab(warm), await meanLab(cool)];
    expect(labDistance(after, target)).toBeLessThanOrEqual(0.2 * labDistance(before, target));
  });

  it('shows a failed job with its error, and answers 400 for a body the operation cannot take', async () => {
    const broken = await frontEnd('enhance', {
      image: `data:image/png;base64,${Buffer.from('no').toString('base64')}`,
    });
    expect(broken.final).toMatchObject({
      status: 'failed',
      result: null,
      error: expect.stringMatching(/^image_url: /),
    });
    const missing = await t.request('POST', '/api/color-match/generate-async', { body: { image: png(await scene()) } });
    expect(missing.status).toBe(400);
    const unknown = await t.request('POST', '/api/blur/generate-async', { body: { image: png(await scene()) } });
    expect(unknown.status).toBe(404);
  });

  it('finds a job only in its own queue, and only for its owner', async () => {
    const submitted = await t.request('POST', '/api/stencil/generate-async', { body: { image: png(await scene()) } });
    const id = submitted.body.jobId;
    expect((await t.request('GET', `/api/queue/status/${id}?queue=enhance`)).status).toBe(404);
    expect((await t.request('GET', `/api/queue/status/${id}`)).status).toBe(200);
    expect((await t.request('GET', `/api/queue/status/${id}`, { as: 'mallory' })).status).toBe(404);
    expect((await t.request('GET', `/api/queue/status/${id}`, { token: null })).status).toBe(401);
  });

  it('gives admins the counts of each queue', async () => {
    expect((await t.request('GET', '/api/admin/queue-stats')).status).toBe(403);
    const admin = t.token('admin', { admin: true });
    const stats = await t.request('GET', '/api/admin/queue-stats', { token: admin });
    expect(stats.status).toBe(200);
    expect(Object.keys(stats.body.data).sort()).toEqual(['color-match', 'enhance', 'ia-gen', 'stencil']);
    // The jobs of the specs above: two stencils (one may still run), an enhance done and one failed, a colour match.
    expect(stats.body.data.enhance).toEqual({ waiting: 0, active: 0, completed: 1, failed: 1 });
    expect(stats.body.data['color-match']).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 });
    const stencil = stats.body.data.stencil;
    expect(stencil.waiting + stencil.active + stencil.completed).toBe(2);
    expect(stats.body.data['ia-gen']).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
  });
});
