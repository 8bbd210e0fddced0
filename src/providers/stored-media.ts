import type { Readable } from 'node:stream';

/** `upload:<id>`: a file a user uploaded (POST /api/v1/media/uploads), kept in the platform's storage. */
export const UPLOAD_PREFIX = 'upload:';

/** `upload:<id>` as the DTOs take it (a UUID). */
const UPLOAD_REFERENCE = /^upload:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Every `upload:<id>` string in an input, at any depth, with its field's path (`images[2].image_url`). */
export function uploadReferencesOf(input: unknown, path = ''): { field: string; id: string }[] {
  if (typeof input === 'string') {
    const match = UPLOAD_REFERENCE.exec(input);
    return match ? [{ field: path, id: match[1] }] : [];
  }
  if (Array.isArray(input)) return input.flatMap((item, i) => uploadReferencesOf(item, `${path}[${i}]`));
  if (input && typeof input === 'object') {
    return Object.entries(input).flatMap(([key, value]) => uploadReferencesOf(value, path ? `${path}.${key}` : key));
  }
  return [];
}

/** The id of an `upload:<id>` reference; undefined for anything else. */
export function uploadIdOf(ref: string): string | undefined {
  return ref.startsWith(UPLOAD_PREFIX) ? ref.slice(UPLOAD_PREFIX.length) : undefined;
}

/** Why `upload:<id>` cannot reach a vendor that fetches its inputs (see StoredMedia.canLink). */
export function unlinkableUpload(id: string): string {
  return `upload:${id} cannot be handed to a provider that fetches its inputs: set PUBLIC_BASE_URL (or PUBLIC_URL) to an address it can reach`;
}

/**
 * Media inputs kept in the platform's own storage (uploads), as providers reach them: their bytes, for adapters that
 * fetch inputs themselves (downloadMedia), or a signed link, for those that hand a URL to a vendor. Also the DI token
 * the uploads module binds.
 */
export abstract class StoredMedia {
  /** The bytes of `upload:<id>` as a stream; null when there is no such upload (never made, expired, deleted). */
  abstract open(
    id: string,
    signal?: AbortSignal,
  ): Promise<{ stream: Readable; size: number; contentType: string } | null>;

  /**
   * A signed, absolute link to the stored file of `upload:<id>` that a vendor can fetch; a permanent task error when
   * there is no such upload or the deployment has no public address to link to.
   */
  abstract link(id: string): Promise<string>;

  /**
   * Whether `link` can give a vendor a link it could fetch at all (S3, or a public address for local files). When it
   * cannot, the providers that hand URLs to their vendor are no candidates for inputs holding uploads.
   */
  abstract canLink(): boolean;
}
