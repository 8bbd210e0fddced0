import type { Readable } from 'node:stream';

/** `upload:<id>`: a file a user uploaded (POST /api/v1/media/uploads), kept in the platform's storage. */
export const UPLOAD_PREFIX = 'upload:';

/** The id of an `upload:<id>` reference; undefined for anything else. */
export function uploadIdOf(ref: string): string | undefined {
  return ref.startsWith(UPLOAD_PREFIX) ? ref.slice(UPLOAD_PREFIX.length) : undefined;
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
}
