import { createHmac, randomBytes } from 'node:crypto';
import { constants, createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contentTypeFor, isValidKey, ObjectBody, StorageBackend, StoredObject } from './storage.backend';

/** Content type of `<file>` lives in `<file>.meta.json`; file names never end so (see the service's sanitizer). */
export const META_SUFFIX = '.meta.json';

/** Outputs up to this size are written with synchronous calls (see put). */
const SMALL_WRITE_BYTES = 64 * 1024;

/** The `sig` of a local file URL: base64url HMAC-SHA256(secret, key + '\n' + expires). */
export function signFileKey(secret: string, key: string, expires: number | string): string {
  return createHmac('sha256', secret).update(`${key}\n${expires}`).digest('base64url');
}

export interface LocalStorageOptions {
  dir: string;
  secret: string;
  ttlSeconds: number;
  /** '' → relative URLs. */
  publicBaseUrl: string;
}

/** Files under STORAGE_DIR, served by FilesController through HMAC-signed, expiring URLs. */
export class LocalStorageBackend extends StorageBackend {
  readonly kind = 'local';
  readonly root: string;

  constructor(private readonly opts: LocalStorageOptions) {
    super();
    this.root = path.resolve(opts.dir);
  }

  /** Absolute path of a key, never outside the root (the key check already refuses traversal; this is the backstop). */
  pathOf(key: string): string {
    if (!isValidKey(key)) throw new Error('invalid storage key');
    const file = path.resolve(this.root, ...key.split('/'));
    if (!file.startsWith(this.root + path.sep)) throw new Error('invalid storage key');
    return file;
  }

  async put(key: string, body: ObjectBody, contentType: string, signal?: AbortSignal): Promise<void> {
    const file = this.pathOf(key);
    const sidecar = contentTypeFor(file) !== contentType;
    const meta = JSON.stringify({ contentType });
    if (!('data' in body)) {
      // A file: copied by the kernel (or moved when it is ours to take) into place, never read into memory.
      signal?.throwIfAborted();
      await mkdir(path.dirname(file), { recursive: true });
      await this.writeSidecar(file, sidecar ? meta : undefined, signal);
      await placeAtomically(body.file, file, body.move ?? false);
      return;
    }
    const { data } = body;
    if (data.length <= SMALL_WRITE_BYTES) {
      // Small outputs (sandbox images, transcripts) are written with synchronous calls: on a local disk the write
      // takes microseconds, less than handing each call to the thread pool and back.
      signal?.throwIfAborted();
      if (mkdirSync(path.dirname(file), { recursive: true }) !== undefined) {
        if (sidecar) writeFileSync(file + META_SUFFIX, meta, { flag: 'wx' });
        writeFileSync(file, data, { flag: 'wx' });
        return;
      }
    } else if ((await mkdir(path.dirname(file), { recursive: true })) !== undefined) {
      // A directory made just now holds nothing stale and its name is not published yet: plain writes suffice
      // (a crash leaves a partial file that the retry, finding the directory, replaces atomically).
      if (sidecar) await writeFile(file + META_SUFFIX, meta, { flag: 'wx', signal });
      await writeFile(file, data, { flag: 'wx', signal });
      return;
    }
    await this.writeSidecar(file, sidecar ? meta : undefined, signal);
    await writeAtomically(file, data, signal);
  }

  /**
   * Streamed into a temp file beside the target, then the sidecar, then renamed into place once whole: a stream that
   * fails leaves neither behind.
   */
  async putStream(key: string, stream: Readable, contentType: string, signal?: AbortSignal): Promise<void> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    const temp = tempNameFor(file);
    try {
      await pipeline(stream, createWriteStream(temp, { flags: 'wx' }), { signal });
      const meta = contentTypeFor(file) !== contentType ? JSON.stringify({ contentType }) : undefined;
      await this.writeSidecar(file, meta, signal);
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Before the file itself: a file is never visible with a stale content type from an earlier attempt. */
  private async writeSidecar(file: string, meta: string | undefined, signal?: AbortSignal): Promise<void> {
    if (meta === undefined) {
      // The extension already says it (the common case): no sidecar, two file operations fewer per output.
      await unlink(file + META_SUFFIX).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    } else {
      await writeAtomically(file + META_SUFFIX, meta, signal);
    }
  }

  /**
   * A hard link when the file system has them (stored files are never changed in place: a put writes a new file),
   * else a kernel copy; the sidecar goes along. Atomic like put.
   */
  async copy(from: string, to: string, signal?: AbortSignal): Promise<boolean> {
    const source = this.pathOf(from);
    const target = this.pathOf(to);
    const info = await stat(source).catch((err: unknown) => {
      if (isMissing(err)) return null;
      throw err;
    });
    if (!info?.isFile()) return false;
    const meta = await readFile(source + META_SUFFIX, 'utf8').catch(() => undefined);
    signal?.throwIfAborted();
    await mkdir(path.dirname(target), { recursive: true });
    await this.writeSidecar(target, meta, signal);
    const temp = tempNameFor(target);
    try {
      await link(source, temp).catch(() => copyFile(source, temp, constants.COPYFILE_EXCL));
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      if (isMissing(err)) return false;
      throw err;
    }
    return true;
  }

  signedUrl(key: string, nowMs = Date.now()): Promise<string> {
    return Promise.resolve(this.signedUrlNow(key, nowMs));
  }

  /** The local link is computed here and now, no credentials to fetch. */
  signedUrlNow(key: string, nowMs = Date.now()): string {
    const expires = Math.floor(nowMs / 1000) + this.opts.ttlSeconds;
    const sig = signFileKey(this.opts.secret, key, expires);
    return `${this.opts.publicBaseUrl}/files/${key}?expires=${expires}&sig=${sig}`;
  }

  async read(key: string): Promise<StoredObject | null> {
    if (!isValidKey(key) || key.endsWith(META_SUFFIX)) return null;
    const file = this.pathOf(key);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        await handle.close();
        return null;
      }
      const contentType = (await readMetaContentType(file)) ?? contentTypeFor(file);
      // The stream owns the handle from here (autoClose), so the size and bytes come from the same open file.
      return { stream: handle.createReadStream(), size: stats.size, contentType };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  open(key: string): Promise<StoredObject | null> {
    return this.read(key);
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    await rm(file + META_SUFFIX, { force: true });
    await rm(file, { force: true });
  }
}

/**
 * Puts the file at `source` at `file` atomically: moved when it is ours to move and on the same file system (a
 * rename), else copied by the kernel to a temp file beside `file`, then renamed.
 */
async function placeAtomically(source: string, file: string, move: boolean): Promise<void> {
  if (move) {
    try {
      await rename(source, file);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EXDEV') throw err;
    }
  }
  const temp = tempNameFor(file);
  try {
    await copyFile(source, temp, constants.COPYFILE_EXCL);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Temp file in the same directory + rename: readers see the old file or the new one, never half of one. */
async function writeAtomically(file: string, data: Buffer | string, signal?: AbortSignal): Promise<void> {
  const temp = tempNameFor(file);
  try {
    await writeFile(temp, data, { flag: 'wx', signal });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

async function readMetaContentType(file: string): Promise<string | undefined> {
  try {
    const meta = JSON.parse(await readFile(file + META_SUFFIX, 'utf8')) as { contentType?: unknown };
    return typeof meta.contentType === 'string' ? meta.contentType : undefined;
  } catch {
    return undefined; // no sidecar (or a broken one): the extension decides
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
