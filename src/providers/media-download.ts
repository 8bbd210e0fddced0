import { writeFile } from 'node:fs/promises';
import { ProviderError, ProviderErrorCode } from './provider.port';
import { UrlGuard } from '../security/url-guard';
import { providerDownload } from './provider-http';

export interface DownloadOptions {
  /** Every download made on a user's behalf goes through the guard. */
  guard: UrlGuard;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface DownloadedMedia {
  /** The local copy (the path given). */
  file: string;
  size: number;
  contentType: string;
  filename: string;
}

/**
 * Fetches a media input on the user's behalf (e.g. `audio_url`) into `file` — an http(s) URL, or a base64 `data:` URL
 * the task carried inline (image_edit's media fields) — streamed to disk (memory stays flat
 * whatever the size): no redirects, a size cap counted while the bytes arrive, a deadline; failures are permanent
 * task errors with codes the client can act on. The URL guard checks the URL and every address it resolves to.
 */
export async function downloadMedia(url: string, file: string, opts: DownloadOptions): Promise<DownloadedMedia> {
  if (url.startsWith('data:')) return writeDataUrl(url, file, opts.maxBytes);
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
