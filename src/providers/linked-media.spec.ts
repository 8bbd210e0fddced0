import { TaskType } from '../tasks/task.enums';
import { linkUploads, withLinkedUploads } from './linked-media';
import { MediaProvider, ProviderContext, StartOutcome } from './provider.port';
import { StoredMedia } from './stored-media';

const A = '0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10';
const B = '11111111-2222-4333-8444-555555555555';
const link = (id: string) => Promise.resolve(`https://files.example.com/uploads/${id}?sig=s`);

describe('linkUploads', () => {
  it('replaces every upload: reference at any depth with its link, and leaves everything else as it is', async () => {
    const input = {
      url_video: `upload:${A}`,
      url_audio: 'https://example.com/a.mp3',
      images: [{ id: 'x', image_url: `upload:${B}`, duracao: 2 }],
      path: 'upload:not-an-id',
    };
    expect(await linkUploads(input, link)).toEqual({
      url_video: `https://files.example.com/uploads/${A}?sig=s`,
      url_audio: 'https://example.com/a.mp3',
      images: [{ id: 'x', image_url: `https://files.example.com/uploads/${B}?sig=s`, duracao: 2 }],
      path: 'upload:not-an-id',
    });
  });

  it('answers the same object when there is nothing to link', async () => {
    const input = { prompt: 'p', images: [{ image_url: 'https://example.com/1.png' }] };
    expect(await linkUploads(input, link)).toBe(input);
  });
});

describe('withLinkedUploads', () => {
  class Recording extends MediaProvider<TaskType.VideoGeneration> {
    readonly name = 'recording';
    readonly taskTypes = [TaskType.VideoGeneration] as const;
    override readonly mediaInputs = 'linked';
    readonly seen: unknown[] = [];
    isConfigured(): boolean {
      return true;
    }
    start(ctx: ProviderContext<TaskType.VideoGeneration>): Promise<StartOutcome> {
      this.seen.push(ctx.input);
      return Promise.resolve({ kind: 'submitted', job: { id: 'j' }, pollAfterMs: 1 });
    }
  }

  it('hands start the input with links, keeps every other member, and passes link failures on', async () => {
    const provider = new Recording();
    const media = { open: jest.fn(), link: jest.fn(link), canLink: () => true } as unknown as StoredMedia;
    const wrapped = withLinkedUploads(provider, media);
    const ctx = {
      type: TaskType.VideoGeneration,
      input: { prompt: 'waves', image_url: `upload:${A}` },
      taskId: 't',
      signal: new AbortController().signal,
      reportProgress: () => undefined,
    } as ProviderContext;
    await wrapped.start(ctx);
    expect(provider.seen).toEqual([{ prompt: 'waves', image_url: `https://files.example.com/uploads/${A}?sig=s` }]);
    expect(ctx.input).toEqual({ prompt: 'waves', image_url: `upload:${A}` }); // the run's own context is untouched
    expect([wrapped.name, wrapped.mediaInputs, wrapped.isConfigured()]).toEqual(['recording', 'linked', true]);

    (media.link as jest.Mock).mockRejectedValueOnce(new Error('upload gone'));
    await expect(wrapped.start(ctx)).rejects.toThrow('upload gone');
    expect(provider.seen).toHaveLength(1);
  });

  it('refuses inputs holding uploads, by field, where no link a vendor could fetch can be made', () => {
    const provider = new Recording();
    let linkable = false;
    const media = { open: jest.fn(), link: jest.fn(link), canLink: () => linkable } as unknown as StoredMedia;
    const wrapped = withLinkedUploads(provider, media);
    const task = { type: TaskType.VideoGeneration, input: { prompt: 'waves', image_url: `upload:${A}` } };
    expect(wrapped.validate(task as never)).toEqual([
      {
        field: 'image_url',
        message: `image_url: upload:${A} cannot be handed to a provider that fetches its inputs: set PUBLIC_BASE_URL (or PUBLIC_URL) to an address it can reach`,
      },
    ]);
    // URLs of the user's own are the vendor's to fetch; a public address makes uploads linkable.
    expect(
      wrapped.validate({ ...task, input: { prompt: 'waves', image_url: 'https://e.com/a.png' } } as never),
    ).toEqual([]);
    linkable = true;
    expect(wrapped.validate(task as never)).toEqual([]);
  });
});
