import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { classifyStatus, providerDownload } from '../providers/provider-http';
import { ProviderArtifact, ProviderError, ProviderErrorCode } from '../providers/provider.port';
import { OutputUrlGuard } from '../security/url-guard';
import { META_SUFFIX } from './local-storage.backend';
import { SNIFF_BYTES, sniffMediaType } from '../uploads/media-sniffer';
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
   * Stores every artifact under `<prefix>/<taskId>/<name>`, one at a time: bytes in hand as they are, files streamed
   * from disk, URLs streamed from the download into storage as they arrive (counted against the size cap and hashed
   * on the way; the type sniffed from the first chunk when nothing names one), so memory stays flat whatever the size.
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
      const suggested = artifact.filename ?? nameFromUrl(artifact.url);
      // The adapter's word first, then the download's header, then the name's extension, then the bytes; generic
      // types lose.
      const place = (headerType: string | undefined, head: Buffer | undefined, complete?: boolean) => {
        const contentType =
          [
            artifact.contentType,
            headerType,
            contentTypeFor(sanitizeFilename(suggested ?? '', index)),
            head && sniffMediaType(head.subarray(0, SNIFF_BYTES), complete ?? head.length < SNIFF_BYTES),
          ]
            .map(cleanContentType)
            .find((type) => type !== undefined && !GENERIC_TYPES.has(type)) ?? DEFAULT_CONTENT_TYPE;
        const filename = dedupeFilename(sanitizeFilename(suggested ?? '', index, contentType), used);
        return { key: `${prefix}/${taskId}/${filename}`, filename, contentType };
      };
      const stored =
        artifact.data || artifact.file
          ? await this.putArtifact(artifact, place, opts.signal)
          : await this.streamArtifact(artifact, place, opts.signal);
      files.push({
        key: stored.key,
        url: await this.backend.signedUrl(stored.key),
        content_type: stored.contentType,
        size_bytes: stored.size,
        filename: stored.filename,
        sha256: stored.sha256,
      });
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
      copies.push({ ...file, key, url: await this.backend.signedUrl(key) });
    }
    return copies;
  }

  async signedUrl(key: string): Promise<string> {
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

  /** Bytes in hand, or the worker's own file (moved into place where it can be). */
  private async putArtifact(artifact: ProviderArtifact, place: Placer, signal?: AbortSignal): Promise<Placed> {
    let body: ObjectBody;
    let head: Buffer | undefined;
    if (artifact.data) {
      const data = Buffer.isBuffer(artifact.data) ? artifact.data : Buffer.from(artifact.data);
      body = { data, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
      head = data;
    } else {
      const { size } = await stat(artifact.file!);
      body = { file: artifact.file!, move: true, size, sha256: await sha256OfFile(artifact.file!, signal) };
    }
    const target = place(undefined, head, true);
    await this.backend.put(target.key, body, target.contentType, signal);
    return { ...target, size: body.size, sha256: body.sha256 };
  }

  /**
   * A provider's URL, streamed from its response into storage: announced-small answers are read whole first, the
   * rest go through as they arrive, the first chunk held back only long enough to sniff its type.
   */
  private async streamArtifact(artifact: ProviderArtifact, place: Placer, signal?: AbortSignal): Promise<Placed> {
    if (!artifact.url) {
      throw ProviderError.permanent(ProviderErrorCode.BadResponse, 'a provider output has neither bytes nor a URL');
    }
    // A provider chooses these URLs: they pass the URL guard (its own origins allowed) like a user's would. The URL
    // itself is never put in a message, since it often carries a token.
    const refused = (why: string) =>
      ProviderError.permanent(ProviderErrorCode.BadResponse, `a provider output URL was refused: ${why}`);
    const problem = this.guard.problem(artifact.url);
    if (problem) throw refused(`it ${problem}`);
    let target: ReturnType<Placer> | undefined;
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
        sink: async (body, headers) => {
          const head = await firstChunk(body);
          target = place(headers['content-type'], head ?? Buffer.alloc(0));
          await this.backend.putStream(target.key, withHead(head, body), target.contentType, signal);
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
    const { size, sha256 } = res;
    if (res.data) {
      target = place(res.headers['content-type'], res.data, true);
      await this.backend.put(target.key, { data: res.data, size, sha256 }, target.contentType, signal);
    }
    return { ...target!, size, sha256 };
  }
}

type Placer = (
  headerType: string | undefined,
  head: Buffer | undefined,
  complete?: boolean,
) => { key: string; filename: string; contentType: string };
type Placed = ReturnType<Placer> & { size: number; sha256: string };

/** The stream again, `head` first (a stream that has ended cannot take back what was read from it). */
function withHead(head: Buffer | null, rest: Readable): Readable {
  return Readable.from(
    (async function* () {
      if (head) yield head;
      yield* rest;
    })(),
    { objectMode: false },
  );
}

/** What a stream has buffered when it first has something (null when it ends empty); the rest stays in it. */
function firstChunk(stream: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.off('readable', onReadable).off('end', onEnd).off('error', onError);
    };
    const onReadable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return; // the end is next
      done();
      resolve(chunk);
    };
    const onEnd = () => {
      done();
      resolve(null);
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    stream.on('readable', onReadable).once('end', onEnd).once('error', onError);
  });
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
