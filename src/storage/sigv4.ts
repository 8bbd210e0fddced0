import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 (header and query-string forms), enough for S3-compatible stores: we sign our own PUTs and
 * presign GETs without pulling in the AWS SDK. Paths are encoded once, as S3 expects (other services double-encode).
 */

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SigV4Scope {
  region: string;
  service: string;
}

export interface SigV4Request {
  method: string;
  /** Absolute URL whose path is already URI-encoded (see `encodeKeyPath`). */
  url: string;
  /** Every header given here is signed; `host` and `x-amz-date` are added. */
  headers?: Record<string, string>;
  /** Hex SHA-256 of the body, or UNSIGNED-PAYLOAD. */
  payloadHash: string;
}

export interface SignedRequest {
  /** The request's headers plus `x-amz-date` and `authorization` (not `host`: the HTTP client sets it from the URL). */
  headers: Record<string, string>;
  signature: string;
  canonicalRequest: string;
  stringToSign: string;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** `20150830T123600Z` */
export function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export function signingKey(secretAccessKey: string, day: string, scope: SigV4Scope): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, day);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  return hmac(kService, 'aws4_request');
}

/** RFC 3986 encoding as SigV4 wants it: only A-Z a-z 0-9 - . _ ~ stay as is; `/` too when `keepSlash`. */
export function uriEncode(value: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(ch) || (keepSlash && ch === '/')) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** An object key as a URL path (segments encoded, slashes kept). */
export function encodeKeyPath(key: string): string {
  return uriEncode(key, true);
}

/** Query pairs decoded without the form rule (`+` stays `+`), re-encoded, sorted by name then value. */
function canonicalQuery(search: string, extra: [string, string][] = []): string {
  const pairs: [string, string][] = search
    .replace(/^\?/, '')
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))];
    });
  for (const [name, value] of extra) pairs.push([uriEncode(name), uriEncode(value)]);
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

function canonicalHeaders(headers: Record<string, string>): { block: string; signed: string } {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    map.set(name.toLowerCase(), String(value).trim().replace(/\s+/g, ' '));
  }
  const names = [...map.keys()].sort();
  return { block: names.map((n) => `${n}:${map.get(n)}\n`).join(''), signed: names.join(';') };
}

function stringToSign(timestamp: string, credentialScope: string, canonicalRequest: string): string {
  return [SIGV4_ALGORITHM, timestamp, credentialScope, sha256Hex(canonicalRequest)].join('\n');
}

/** Signs a request with an `Authorization` header. */
export function signRequest(
  creds: SigV4Credentials,
  scope: SigV4Scope,
  req: SigV4Request,
  date: Date = new Date(),
): SignedRequest {
  const url = new URL(req.url);
  const timestamp = amzDate(date);
  const day = timestamp.slice(0, 8);
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const given = Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const toSign = { ...given, host: given.host ?? url.host, 'x-amz-date': timestamp };
  const { block, signed } = canonicalHeaders(toSign);
  const canonicalRequest = [
    req.method.toUpperCase(),
    url.pathname || '/',
    canonicalQuery(url.search),
    block,
    signed,
    req.payloadHash,
  ].join('\n');
  const sts = stringToSign(timestamp, credentialScope, canonicalRequest);
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day, scope))
    .update(sts)
    .digest('hex');
  const headers: Record<string, string> = { ...given, 'x-amz-date': timestamp };
  delete headers.host;
  headers.authorization =
    `${SIGV4_ALGORITHM} Credential=${creds.accessKeyId}/${credentialScope}, ` +
    `SignedHeaders=${signed}, Signature=${signature}`;
  return { headers, signature, canonicalRequest, stringToSign: sts };
}

export interface PresignOptions {
  method?: string;
  /** Absolute URL whose path is already URI-encoded. */
  url: string;
  expiresSeconds: number;
  date?: Date;
}

/** A URL anyone can use until it expires (query-string SigV4, only `host` signed, payload unsigned). */
export function presignUrl(creds: SigV4Credentials, scope: SigV4Scope, opts: PresignOptions): string {
  const url = new URL(opts.url);
  const timestamp = amzDate(opts.date ?? new Date());
  const day = timestamp.slice(0, 8);
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const query = canonicalQuery(url.search, [
    ['X-Amz-Algorithm', SIGV4_ALGORITHM],
    ['X-Amz-Credential', `${creds.accessKeyId}/${credentialScope}`],
    ['X-Amz-Date', timestamp],
    ['X-Amz-Expires', String(opts.expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
  ]);
  const canonicalRequest = [
    (opts.method ?? 'GET').toUpperCase(),
    url.pathname || '/',
    query,
    `host:${url.host}\n`,
    'host',
    UNSIGNED_PAYLOAD,
  ].join('\n');
  const sts = stringToSign(timestamp, credentialScope, canonicalRequest);
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day, scope))
    .update(sts)
    .digest('hex');
  return `${url.origin}${url.pathname}?${query}&X-Amz-Signature=${signature}`;
}
