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
 * Fetches a media input on the user's behalf (e.g. `audio_url`) into `file`, streamed to disk (memory stays flat
 * whatever the size): no redirects, a size cap counted while the bytes arrive, a deadline; failures are permanent
 * task errors with codes the client can act on. The URL guard checks the URL and every address it resolves to.
 */
export async function downloadMedia(url: string, file: string, opts: DownloadOptions): Promise<DownloadedMedia> {
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
