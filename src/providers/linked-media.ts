import { MediaProvider, ProviderContext } from './provider.port';
import { StoredMedia, unlinkableUpload, uploadIdOf, uploadReferencesOf } from './stored-media';

/** `upload:<id>` (the DTOs' form: a UUID). */
const UPLOAD_REFERENCE = /^upload:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The input with every `upload:<id>` string in it (at any depth) replaced by `link(id)`; the same object if none. */
export async function linkUploads(input: unknown, link: (id: string) => Promise<string>): Promise<unknown> {
  if (typeof input === 'string') return UPLOAD_REFERENCE.test(input) ? link(uploadIdOf(input)!) : input;
  if (Array.isArray(input)) {
    const items = await Promise.all(input.map((item) => linkUploads(item, link)));
    return items.every((item, i) => item === input[i]) ? input : items;
  }
  if (input && typeof input === 'object') {
    const entries = await Promise.all(
      Object.entries(input).map(async ([key, value]) => [key, await linkUploads(value, link)] as const),
    );
    const source = input as Record<string, unknown>;
    return entries.every(([key, value]) => value === source[key]) ? input : Object.fromEntries(entries);
  }
  return input;
}

/**
 * The provider as the registry hands it out when it passes media URLs on to its vendor (`mediaInputs: 'linked'`):
 * `start` receives the input with its `upload:<id>` references as signed links of the stored files, so no adapter
 * resolves them by hand; and where no link a vendor could fetch can be made (local storage, no public address),
 * `validate` refuses inputs holding uploads, so routing picks a provider that reads them from storage, or the submit
 * answers 400 naming the field, instead of a task that is sure to fail. Every other member is the provider's own.
 */
export function withLinkedUploads(provider: MediaProvider, media: StoredMedia): MediaProvider {
  const start: MediaProvider['start'] = async (ctx) => {
    const input = await linkUploads(ctx.input, (id) => media.link(id));
    return provider.start(input === ctx.input ? ctx : ({ ...ctx, input } as ProviderContext));
  };
  const validate: MediaProvider['validate'] = (task) => {
    const problems = provider.validate(task);
    if (media.canLink()) return problems;
    const unreachable = uploadReferencesOf(task.input).map(({ field, id }) => ({
      field,
      message: `${field}: ${unlinkableUpload(id)}`,
    }));
    return [...problems, ...unreachable];
  };
  return new Proxy(provider, {
    get: (target, key, receiver) =>
      key === 'start' ? start : key === 'validate' ? validate : (Reflect.get(target, key, receiver) as unknown),
  });
}
