import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import type { StorageSettings } from '../config/app-config';
import { ProviderError } from '../providers/provider.port';
import { EMPTY_SHA256, encodeKeyPath, presignUrl, signRequest, SigV4Credentials, SigV4Scope } from './sigv4';
import { ObjectBody, StorageBackend, StoredObject } from './storage.backend';

const MIB = 1024 * 1024;
/** Error bodies are small XML documents; read no more than this of one. */
const MAX_ERROR_BODY = 64 * 1024;

/** Failures of our own storage: transient (retrying the task may succeed), never counted against a provider. */
export const STORAGE_UNAVAILABLE = 'storage_unavailable';

/** An S3-compatible bucket (AWS S3, MinIO, R2…): PUT with SigV4, served by presigned GET URLs. */
export class S3StorageBackend extends StorageBackend {
  readonly kind = 's3';
  private readonly creds: SigV4Credentials;
  private readonly scope: SigV4Scope;

  constructor(
    private readonly s3: StorageSettings['s3'],
    private readonly ttlSeconds: number,
    private readonly clock: () => Date = () => new Date(),
  ) {
    super();
    this.creds = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    this.scope = { region: s3.region, service: 's3' };
  }

  objectUrl(key: string): string {
    const endpoint = new URL(this.s3.endpoint);
    const base = endpoint.pathname.replace(/\/+$/, '');
    return this.s3.forcePathStyle
      ? `${endpoint.origin}${base}/${this.s3.bucket}/${encodeKeyPath(key)}`
      : `${endpoint.protocol}//${this.s3.bucket}.${endpoint.host}${base}/${encodeKeyPath(key)}`;
  }

  /** One PUT; a file is streamed from disk with its length (S3 takes up to 5 GiB so). */
  async put(key: string, body: ObjectBody, contentType: string, signal?: AbortSignal): Promise<void> {
    const bytes = 'data' in body ? body.data : createReadStream(body.file);
    await this.send(
      key,
      { 'content-type': contentType },
      { bytes, size: body.size, sha256: body.sha256 },
      'a PUT',
      signal,
    );
  }

  /** CopyObject: S3 copies within the bucket (content type included), nothing passes through here. */
  async copy(from: string, to: string, signal?: AbortSignal): Promise<boolean> {
    const source = { 'x-amz-copy-source': `/${this.s3.bucket}/${encodeKeyPath(from)}` };
    const status = await this.send(to, source, { size: 0, sha256: EMPTY_SHA256 }, 'a copy', signal, 404);
    return status !== 404;
  }

  /** A signed PUT of `key`: its status, or a transient storage failure (`missing` is answered, not thrown). */
  private async send(
    key: string,
    headers: Record<string, string>,
    body: { bytes?: Buffer | Readable; size: number; sha256: string },
    what: string,
    signal?: AbortSignal,
    missing?: number,
  ): Promise<number> {
    const url = this.objectUrl(key);
    const signed = signRequest(
      this.creds,
      this.scope,
      { method: 'PUT', url, headers: { ...headers, 'x-amz-content-sha256': body.sha256 }, payloadHash: body.sha256 },
      this.clock(),
    );
    // Big outputs take a while to upload: 2 minutes plus a second per MiB.
    const timeout = AbortSignal.timeout(120_000 + Math.ceil(body.size / MIB) * 1000);
    let res;
    try {
      res = await request(url, {
        method: 'PUT',
        headers: { ...signed.headers, 'content-length': String(body.size) },
        body: body.bytes,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw err; // cancel or task timeout: the processor knows which
      const code = timeout.aborted ? 'timeout' : ((err as { code?: string }).code ?? (err as Error).name);
      throw ProviderError.transient(STORAGE_UNAVAILABLE, `output storage unreachable (${code})`);
    }
    const answer = await readSome(res.body);
    if (res.statusCode === missing) return res.statusCode;
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const code = /<Code>([A-Za-z0-9._-]{1,100})<\/Code>/.exec(answer)?.[1];
      throw ProviderError.transient(
        STORAGE_UNAVAILABLE,
        `output storage answered ${res.statusCode}${code ? ` (${code})` : ''} to ${what}`,
      );
    }
    return res.statusCode;
  }

  signedUrl(key: string, nowMs?: number): string {
    return presignUrl(this.creds, this.scope, {
      url: this.objectUrl(key),
      expiresSeconds: this.ttlSeconds,
      date: nowMs === undefined ? this.clock() : new Date(nowMs),
    });
  }

  /** Clients fetch S3 objects from S3 itself (presigned URLs); nothing is streamed through the API. */
  async read(_key: string): Promise<StoredObject | null> {
    return null;
  }

  /** A signed GET, its body streamed as it arrives (the caller counts and caps it). */
  async open(key: string, signal?: AbortSignal): Promise<StoredObject | null> {
    const res = await this.request('GET', key, 'a GET', signal);
    if (res.statusCode === 404) {
      await readSome(res.body); // a small error document: read, so the connection is reused
      return null;
    }
    await this.assertOk(res, 'a GET');
    const size = Number(res.headers['content-length']);
    const type = res.headers['content-type'];
    return {
      stream: res.body,
      size: Number.isFinite(size) ? size : 0,
      contentType: typeof type === 'string' ? type : 'application/octet-stream',
    };
  }

  async delete(key: string): Promise<void> {
    const res = await this.request('DELETE', key, 'a DELETE');
    await this.assertOk(res, 'a DELETE', 404);
  }

  /** A signed request without a body (GET, DELETE); a network failure is a transient storage failure. */
  private async request(method: 'GET' | 'DELETE', key: string, what: string, signal?: AbortSignal) {
    const url = this.objectUrl(key);
    const signed = signRequest(
      this.creds,
      this.scope,
      { method, url, headers: { 'x-amz-content-sha256': EMPTY_SHA256 }, payloadHash: EMPTY_SHA256 },
      this.clock(),
    );
    // The answer's start and each pause in its body are bounded, not the whole body: a big one streams for as long as
    // it takes (the task's deadline holds).
    try {
      return await request(url, {
        method,
        headers: signed.headers,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const code = (err as { code?: string }).code ?? (err as Error).name;
      throw ProviderError.transient(STORAGE_UNAVAILABLE, `storage unreachable for ${what} (${code})`);
    }
  }

  private async assertOk(
    res: { statusCode: number; body: AsyncIterable<Buffer> & { destroy(): unknown } },
    what: string,
    alsoFine?: number,
  ): Promise<void> {
    if ((res.statusCode >= 200 && res.statusCode < 300) || res.statusCode === alsoFine) {
      if (what !== 'a GET') await readSome(res.body);
      return;
    }
    const answer = await readSome(res.body);
    const code = /<Code>([A-Za-z0-9._-]{1,100})<\/Code>/.exec(answer)?.[1];
    throw ProviderError.transient(
      STORAGE_UNAVAILABLE,
      `storage answered ${res.statusCode}${code ? ` (${code})` : ''} to ${what}`,
    );
  }
}

async function readSome(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_ERROR_BODY) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
