import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ProviderError, ProviderErrorCode } from './provider.port';
import { StoredMedia, uploadIdOf } from './stored-media';
import { UrlGuard } from '../security/url-guard';
import { providerDownload } from './provider-http';
import { extensionFor as extensionOf } from '../storage/storage.backend';

export interface DownloadOptions {
  /** Every download made on a user's behalf goes through the guard. */
  guard: UrlGuard;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Where `upload:<id>` references are read from; without it they cannot be read. */
  uploads?: StoredMedia;
}

export interface DownloadedMedia {
  /** The local copy (the path given). */
  file: string;
  size: number;
  contentType: string;
  filename: string;
}

/**
 * Fetches a media input on the user's behalf (e.g. `audio_url`) into `file` — an http(s) URL, an `upload:<id>` kept in
 * storage, or a base64 `data:` URL the task carried inline (image_edit's media fields) — streamed to disk (memory stays flat
 * whatever the size): no redirects, a size cap counted while the bytes arrive, a deadline; failures are permanent
 * task errors with codes the client can act on. The URL guard checks the URL and every address it resolves to.
 */
export async function downloadMedia(url: string, file: string, opts: DownloadOptions): Promise<DownloadedMedia> {
  if (url.startsWith('data:')) return writeDataUrl(url, file, opts.maxBytes);
  const uploadId = uploadIdOf(url);
  if (uploadId !== undefined) return copyUpload(uploadId, url, file, opts);
  const problem = opts.guard.problem(url);
  if (problem) throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `${url} ${problem}`);
  const filename = filenameOf(url);
  let res;
  try {
    res = await providerDownload(
      'media input',
      {
        url,
        timeoutMs: opts.timeoutMs,
        signal: opts.signal,
        maxBytes: opts.maxBytes,
        dispatcher: opts.guard.dispatcher(),
      },
      file,
    );
  } catch (err) {
    if (err instanceof ProviderError && err.code === (ProviderErrorCode.BadResponse as string)) {
      throw ProviderError.permanent(ProviderErrorCode.InputTooLarge, `${url} is larger than ${opts.maxBytes} bytes`);
    }
    if (err instanceof ProviderError)
      throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `${url}: ${err.message}`);
    throw err;
  }
  if (res.status < 200 || res.status >= 300) {
    throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `${url} answered ${res.status}`);
  }
  return { file, size: res.size, contentType: res.headers['content-type'] ?? 'application/octet-stream', filename };
}

/** The URL's last path segment, decoded; a malformed percent-encoding is the input's fault, never worth a retry. */
function filenameOf(url: string): string {
  const last = new URL(url).pathname.split('/').pop() || 'input';
  try {
    return decodeURIComponent(last);
  } catch {
    throw ProviderError.permanent(
      ProviderErrorCode.InputInvalid,
      `${url} has a malformed percent-encoding in its path`,
    );
  }
}

const DATA_URL = /^data:([a-z]+\/[a-z0-9.+-]+);base64,/i;

/** A base64 `data:` URL's bytes into `file` (its size was checked at submit; `maxBytes` still holds). */
async function writeDataUrl(url: string, file: string, maxBytes: number): Promise<DownloadedMedia> {
  const header = DATA_URL.exec(url);
  if (!header) throw ProviderError.permanent(ProviderErrorCode.InputInvalid, 'a data: URL must be base64');
  const data = Buffer.from(url.slice(header[0].length), 'base64');
  if (data.length > maxBytes) {
    throw ProviderError.permanent(ProviderErrorCode.InputTooLarge, `an inline image is larger than ${maxBytes} bytes`);
  }
  await writeFile(file, data);
  const extension = header[1].split('/')[1].replace('jpeg', 'jpg');
  return { file, size: data.length, contentType: header[1].toLowerCase(), filename: `inline.${extension}` };
}

/**
 * The stored bytes of `upload:<id>` into `file`, streamed, with the same size cap as a download (an upload may be
 * bigger than what one provider takes). A missing upload (expired, deleted) is the input's fault.
 */
async function copyUpload(id: string, ref: string, file: string, opts: DownloadOptions): Promise<DownloadedMedia> {
  if (!opts.uploads) {
    throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `${ref}: uploads cannot be read here`);
  }
  const stored = await opts.uploads.open(id, opts.signal);
  if (!stored) {
    throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `${ref} has expired or was deleted`);
  }
  const tooLarge = () =>
    ProviderError.permanent(ProviderErrorCode.InputTooLarge, `${ref} is larger than ${opts.maxBytes} bytes`);
  if (stored.size > opts.maxBytes) {
    // Some streams report their destruction as an error: nobody else listens to this one.
    stored.stream.on('error', () => undefined).destroy();
    throw tooLarge();
  }
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      done(size > opts.maxBytes ? tooLarge() : null, chunk);
    },
  });
  try {
    await pipeline(stored.stream, counter, createWriteStream(file), { signal: opts.signal });
  } catch (err) {
    await rm(file, { force: true }).catch(() => undefined);
    if (err instanceof ProviderError || opts.signal?.aborted) throw err;
    throw ProviderError.transient(
      ProviderErrorCode.Network,
      `${ref} could not be read from storage: ${(err as Error).message}`,
    );
  }
  const extension = extensionOf(stored.contentType);
  return { file, size, contentType: stored.contentType, filename: `upload${extension ? `.${extension}` : ''}` };
}
