import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { classifyStatus, providerDownload } from '../providers/provider-http';
import { ProviderArtifact, ProviderError, ProviderErrorCode } from '../providers/provider.port';
import { OutputUrlGuard } from '../security/url-guard';
import { META_SUFFIX } from './local-storage.backend';
import { sha256Hex } from './sigv4';
import {
  cleanContentType,
  contentTypeFor,
  DEFAULT_CONTENT_TYPE,
  extensionFor,
  isValidKey,
  MAX_FILENAME_LENGTH,
  ObjectBody,
  StorageBackend,
  StoredObject,
} from './storage.backend';

/** One output file as the task reports it (`task.output.files[]`). */
export interface StoredFile {
  key: string;
  /** Signed and expiring: re-sign with `signedUrl(key)` when serving an old task. */
  url: string;
  content_type: string;
  size_bytes: number;
  filename: string;
  sha256: string;
}

export interface SaveOptions {
  /** The task's abort signal (cancel, timeout): stops downloads and writes. */
  signal?: AbortSignal;
  /** First key segment(s), default `tasks`. */
  prefix?: string;
}

export const DOWNLOAD_TIMEOUT_MS = 120_000;
export const MAX_ARTIFACT_BYTES = 2 * 1024 ** 3;
/** Outputs announced at most this big are downloaded into memory: a temp file costs more than it saves for them. */
const SMALL_DOWNLOAD_BYTES = 1024 * 1024;
const GENERIC_TYPES = new Set([DEFAULT_CONTENT_TYPE, 'binary/octet-stream']);

/** Copies provider outputs into our storage (their URLs expire) and hands out expiring URLs to them. */
@Injectable()
export class StorageService {
  constructor(
    private readonly backend: StorageBackend,
    private readonly guard: OutputUrlGuard,
  ) {}

  get kind(): 'local' | 's3' {
    return this.backend.kind;
  }

  /**
   * Stores every artifact under `<prefix>/<taskId>/<name>`, one at a time: bytes in hand as they are, files and URLs
   * streamed (a URL is downloaded to a temp file first unless announced small, its size cap counted on the way), so
   * memory stays flat whatever the size.
   */
  async saveArtifacts(taskId: string, artifacts: ProviderArtifact[], opts: SaveOptions = {}): Promise<StoredFile[]> {
    const prefix = opts.prefix ?? 'tasks';
    if (!isValidKey(prefix) || !isValidKey(taskId) || taskId.includes('/')) {
      throw new Error('storage prefix or task id is not a safe key segment');
    }
    const used = new Set<string>();
    const files: StoredFile[] = [];
    for (const [index, artifact] of artifacts.entries()) {
      opts.signal?.throwIfAborted();
      const { body, headerType, dispose } = await this.bodyOf(artifact, opts.signal);
      try {
        const suggested = artifact.filename ?? nameFromUrl(artifact.url);
        // The adapter's word first, then the download's header, then the name's extension; generic types lose.
        const contentType =
          [artifact.contentType, headerType, contentTypeFor(sanitizeFilename(suggested ?? '', index))]
            .map(cleanContentType)
            .find((type) => type !== undefined && !GENERIC_TYPES.has(type)) ?? DEFAULT_CONTENT_TYPE;
        const filename = dedupeFilename(sanitizeFilename(suggested ?? '', index, contentType), used);
        const key = `${prefix}/${taskId}/${filename}`;
        await this.backend.put(key, body, contentType, opts.signal);
        files.push({
          key,
          url: this.backend.signedUrl(key),
          content_type: contentType,
          size_bytes: body.size,
          filename,
          sha256: body.sha256,
        });
      } finally {
        await dispose?.();
      }
    }
    return files;
  }

  /**
   * The files of an earlier task, copied under `<prefix>/<taskId>/` (same names, bytes and hashes; freshly signed
   * links), so a task answered from the cache names no other task. Null when one of them is gone from storage.
   */
  async copyFiles(
    files: StoredFile[],
    taskId: string,
    opts: { prefix?: string; signal?: AbortSignal } = {},
  ): Promise<StoredFile[] | null> {
    const prefix = opts.prefix ?? 'tasks';
    const copies: StoredFile[] = [];
    for (const file of files) {
      const key = `${prefix}/${taskId}/${file.filename}`;
      if (!isValidKey(file.key) || !isValidKey(key)) return null;
      if (!(await this.backend.copy(file.key, key, opts.signal))) return null;
      copies.push({ ...file, key, url: this.backend.signedUrl(key) });
    }
    return copies;
  }

  signedUrl(key: string): string {
    if (!isValidKey(key)) throw new Error('invalid storage key');
    return this.backend.signedUrl(key);
  }

  /** Stores one object under `key` (a key of ours, e.g. an upload's), its bytes streamed from a file or in hand. */
  async put(key: string, body: ObjectBody, contentType: string, signal?: AbortSignal): Promise<void> {
    if (!isValidKey(key)) throw new Error('invalid storage key');
    await this.backend.put(key, body, contentType, signal);
  }

  /** Reads a stored object back into this process, on either backend; null when it is gone. */
  async open(key: string, signal?: AbortSignal): Promise<StoredObject | null> {
    return isValidKey(key) ? this.backend.open(key, signal) : null;
  }

  async delete(key: string): Promise<void> {
    if (isValidKey(key)) await this.backend.delete(key);
  }

  /** Opens a stored file (local backend only; S3 objects are fetched from S3 with presigned URLs). */
  async read(key: string): Promise<StoredObject> {
    const file = isValidKey(key) ? await this.backend.read(key) : null;
    if (!file) throw new DomainException(ErrorCode.NotFound, 'file not found');
    return file;
  }

  /** An artifact's bytes as storage takes them; `dispose` removes what was made for it (a downloaded copy). */
  private async bodyOf(
    artifact: ProviderArtifact,
    signal?: AbortSignal,
  ): Promise<{ body: ObjectBody; headerType?: string; dispose?: () => Promise<void> }> {
    if (artifact.data) {
      const data = Buffer.isBuffer(artifact.data) ? artifact.data : Buffer.from(artifact.data);
      return { body: { data, size: data.length, sha256: sha256Hex(data) } };
    }
    if (artifact.file) {
      const { size } = await stat(artifact.file);
      const sha256 = await sha256OfFile(artifact.file, signal);
      return { body: { file: artifact.file, move: true, size, sha256 } };
    }
    if (!artifact.url) {
      throw ProviderError.permanent(ProviderErrorCode.BadResponse, 'a provider output has neither bytes nor a URL');
    }
    // A provider chooses these URLs: they pass the URL guard (its own origins allowed) like a user's would. The URL
    // itself is never put in a message, since it often carries a token.
    const refused = (why: string) =>
      ProviderError.permanent(ProviderErrorCode.BadResponse, `a provider output URL was refused: ${why}`);
    const problem = this.guard.problem(artifact.url);
    if (problem) throw refused(`it ${problem}`);
    let dir: string | undefined;
    const dispose = async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    };
    try {
      const res = await providerDownload(
        'output download',
        {
          url: artifact.url,
          timeoutMs: DOWNLOAD_TIMEOUT_MS,
          maxBytes: MAX_ARTIFACT_BYTES,
          signal,
          dispatcher: this.guard.dispatcher(),
        },
        {
          inMemoryUpTo: SMALL_DOWNLOAD_BYTES,
          file: async () => {
            dir = await mkdtemp(join(tmpdir(), 'media-output-'));
            return join(dir, 'download');
          },
        },
      ).catch((err: unknown) => {
        // providerDownload reports the guard's refusals as the input's; here the provider is at fault.
        if (err instanceof ProviderError && err.code === (ProviderErrorCode.InputUnreachable as string)) {
          throw refused(err.message);
        }
        throw err;
      });
      if (res.status < 200 || res.status >= 300) {
        throw classifyStatus('output download', res, 'output file not fetched');
      }
      const headerType = res.headers['content-type'];
      const { size, sha256 } = res;
      if (res.data) return { body: { data: res.data, size, sha256 }, headerType };
      // The downloaded copy is ours alone: storage may move it instead of copying it.
      return { body: { file: join(dir!, 'download'), move: true, size, sha256 }, headerType, dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  }
}

async function sha256OfFile(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash, { signal });
  return hash.digest('hex');
}

/** Last path segment of a URL, decoded; undefined when there is none. */
function nameFromUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const last = new URL(url).pathname.split('/').pop();
    return last ? decodeURIComponent(last) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A file name made of [A-Za-z0-9._-] only: no directories, no leading dot, never our sidecar suffix, at most 100
 * characters (extension kept), with an extension from the content type when it has none.
 */
export function sanitizeFilename(suggested: string, index: number, contentType?: string): string {
  let name = (suggested.split(/[\\/]/).pop() ?? '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .replace(/\.+$/, '');
  if (!/[A-Za-z0-9]/.test(name)) name = `output-${index + 1}`;
  if (name.toLowerCase().endsWith(META_SUFFIX)) name = `${name.slice(0, -META_SUFFIX.length)}-meta.json`;
  const ext = contentType ? extensionFor(contentType) : undefined;
  if (ext && !/\.[A-Za-z0-9]{1,10}$/.test(name)) name = `${name}.${ext}`;
  if (name.length > MAX_FILENAME_LENGTH) {
    const [stem, extension] = splitExtension(name);
    name = stem.slice(0, MAX_FILENAME_LENGTH - extension.length) + extension;
  }
  return name;
}

/** `a.png`, `a-2.png`, `a-3.png`… (case-insensitively, for case-insensitive file systems). */
export function dedupeFilename(name: string, used: Set<string>): string {
  const [stem, extension] = splitExtension(name);
  let candidate = name;
  for (let n = 2; used.has(candidate.toLowerCase()); n++) candidate = `${stem}-${n}${extension}`;
  used.add(candidate.toLowerCase());
  return candidate;
}

function splitExtension(name: string): [string, string] {
  const match = /\.[A-Za-z0-9]{1,10}$/.exec(name);
  return match && match.index > 0 ? [name.slice(0, match.index), match[0]] : [name, ''];
}
