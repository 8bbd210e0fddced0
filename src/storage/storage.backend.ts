import type { Readable } from 'node:stream';

export interface StoredObject {
  stream: Readable;
  size: number;
  contentType: string;
}

/**
 * The bytes of an object to store, with their size and hex SHA-256: small ones in memory, big ones in a local file,
 * streamed from it (never read whole). `move`: the file is the caller's to give away, so it may be moved in place.
 */
export type ObjectBody = { size: number; sha256: string } & ({ data: Buffer } | { file: string; move?: boolean });

/** Where stored outputs live; also the DI token the module binds to the configured implementation. */
export abstract class StorageBackend {
  abstract readonly kind: 'local' | 's3';

  /** Writes the whole object under `key` (replacing any previous one: a retried task rewrites the same keys). */
  abstract put(key: string, body: ObjectBody, contentType: string, signal?: AbortSignal): Promise<void>;

  /**
   * Writes the object under `key` from a stream as it arrives, never holding it whole; the object appears only once
   * the stream has ended (a stream that fails leaves nothing behind, nor any earlier object changed).
   */
  abstract putStream(key: string, stream: Readable, contentType: string, signal?: AbortSignal): Promise<void>;

  /**
   * Copies the object at `from` to `to` (replacing any object there) without passing its bytes through this process;
   * false when there is no object at `from`.
   */
  abstract copy(from: string, to: string, signal?: AbortSignal): Promise<boolean>;

  /** A URL that serves the object until it expires. */
  abstract signedUrl(key: string, nowMs?: number): Promise<string>;

  /** Opens the object for streaming; null when there is none. */
  abstract read(key: string): Promise<StoredObject | null>;

  /**
   * Reads the object's bytes back into this process, whatever the backend (inputs kept here, such as uploads); null
   * when there is none. Unlike `read`, which only serves local files to clients.
   */
  abstract open(key: string, signal?: AbortSignal): Promise<StoredObject | null>;

  /** Removes the object (nothing to do when there is none). */
  abstract delete(key: string): Promise<void>;
}

/** One key segment: our file-name alphabet, never starting with a dot (no `.`, `..`, hidden or temp files). */
const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

const MAX_KEY_LENGTH = 1024;
/** Longest stored file name (the service's sanitizer shortens longer ones). */
export const MAX_FILENAME_LENGTH = 100;
/** What a task's own segments add after its folder: `/<task id>/<file name>`. */
const TASK_KEY_ROOM = 1 + 36 + 1 + MAX_FILENAME_LENGTH;

/** Keys are relative `/`-separated paths we generated; anything else (traversal, absolute, odd bytes) is refused. */
export function isValidKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_KEY_LENGTH && key.split('/').every((segment) => KEY_SEGMENT.test(segment));
}

/**
 * The folder a task's outputs go to: `tasks/`, or `tasks/<folder>` when the input names one (`path` of the video
 * operations; a trailing slash is ignored). Null when storage would refuse its keys, so the submit check and the
 * worker apply one rule.
 */
export function outputPrefix(folder?: string): string | null {
  if (folder === undefined) return 'tasks';
  const prefix = `tasks/${folder.replace(/\/+$/, '')}`;
  return isValidKey(prefix) && prefix.length <= MAX_KEY_LENGTH - TASK_KEY_ROOM ? prefix : null;
}

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'video/quicktime': 'mov',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/ogg': 'ogg',
  'audio/mp4': 'm4a',
  'audio/flac': 'flac',
  'application/x-subrip': 'srt',
  'text/vtt': 'vtt',
  'text/plain': 'txt',
  'application/json': 'json',
  'application/pdf': 'pdf',
};

const TYPES_BY_EXTENSION: Record<string, string> = {
  ...Object.fromEntries(Object.entries(EXTENSIONS).map(([type, ext]) => [ext, type])),
  jpeg: 'image/jpeg',
  wav: 'audio/wav',
  srt: 'application/x-subrip',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** A content type safe to echo in a header (no CR/LF, `type/subtype[; params]`), lower-cased; else undefined. */
export function cleanContentType(value: string | undefined): string | undefined {
  const trimmed = value?.trim().toLowerCase();
  if (!trimmed || trimmed.length > 200) return undefined;
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;\s*[a-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/.test(
    trimmed,
  )
    ? trimmed
    : undefined;
}

export function extensionFor(contentType: string): string | undefined {
  return EXTENSIONS[contentType.split(';')[0].trim()];
}

export function contentTypeFor(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return (dot > 0 && TYPES_BY_EXTENSION[filename.slice(dot + 1).toLowerCase()]) || DEFAULT_CONTENT_TYPE;
}
