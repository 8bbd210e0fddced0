import { TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { TestApp } from './support/test-app';

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

  it('accepts each operation with its own fields, as an image_edit task', async () => {
    for (const body of [
      { operation: 'stencil', image_url: 'https://example.com/a.png', style: 'outline', thickness: 3 },
      { operation: 'enhance', image_url: 'upload:0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10', scale: 4, strength: 0.3 },
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
