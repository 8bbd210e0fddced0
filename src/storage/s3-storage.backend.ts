import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ClientConfig,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { StorageSettings } from '../config/app-config';
import { ProviderError } from '../providers/provider.port';
import { ObjectBody, StorageBackend, StoredObject } from './storage.backend';

/** Failures of our own storage: transient (retrying the task may succeed), never counted against a provider. */
export const STORAGE_UNAVAILABLE = 'storage_unavailable';

/**
 * Multipart part size (S3's smallest) and parts sent at once: a stream is held about PART_BYTES × PARTS_IN_FLIGHT (twice
 * that while a part is assembled) in memory while it goes up.
 */
const PART_BYTES = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * An S3-compatible bucket (AWS S3, MinIO, R2…) through the AWS SDK: streamed multipart uploads, the SDK's retries and
 * its default credential chain (environment, shared files, IAM roles, STS) unless S3_ACCESS_KEY_ID and
 * S3_SECRET_ACCESS_KEY name the keys. Clients get presigned GET links on S3_PUBLIC_ENDPOINT (else S3_ENDPOINT).
 */
export class S3StorageBackend extends StorageBackend {
  readonly kind = 's3';
  private readonly client: S3Client;
  /** Signs the links clients open: same bucket and keys, the endpoint they can reach. */
  private readonly presigner: S3Client;
  private readonly bucket: string;

  constructor(
    s3: StorageSettings['s3'],
    private readonly ttlSeconds: number,
  ) {
    super();
    this.bucket = s3.bucket;
    const common: S3ClientConfig = {
      region: s3.region,
      forcePathStyle: s3.forcePathStyle,
      // Explicit keys override the chain; without them the SDK finds credentials itself.
      credentials:
        s3.accessKeyId && s3.secretAccessKey
          ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
          : undefined,
      // A connection within 10 s, and no pause over a minute in an answer or while a part goes up (a whole transfer
      // takes as long as its size needs; the task's deadline bounds it). The SDK retries what fails (3 attempts).
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
      // The SDK's newer default adds CRC trailers (aws-chunked bodies) that several S3-compatible servers refuse.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    this.client = new S3Client({ ...common, endpoint: s3.endpoint });
    this.presigner = new S3Client({ ...common, endpoint: s3.publicEndpoint ?? s3.endpoint });
  }

  /** Bytes in hand go up in one PUT; a file is streamed from disk (multipart past one part). */
  async put(key: string, body: ObjectBody, contentType: string, signal?: AbortSignal): Promise<void> {
    if ('data' in body) {
      await this.call('a PUT', signal, () =>
        this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body.data, ContentType: contentType }),
          { abortSignal: signal },
        ),
      );
      return;
    }
    await this.putStream(key, createReadStream(body.file), contentType, signal);
  }

  /** A streamed multipart upload: parts go up as they fill, at most PARTS_IN_FLIGHT of them held at once. */
  async putStream(key: string, stream: Readable, contentType: string, signal?: AbortSignal): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: stream, ContentType: contentType },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    const abort = () => void upload.abort().catch(() => undefined);
    signal?.addEventListener('abort', abort, { once: true });
    try {
      await this.call('an upload', signal, () => upload.done(), stream);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /** CopyObject: S3 copies within the bucket (content type included), nothing passes through here. */
  async copy(from: string, to: string, signal?: AbortSignal): Promise<boolean> {
    const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    try {
      await this.call('a copy', signal, () =>
        this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source }), {
          abortSignal: signal,
        }),
      );
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  signedUrl(key: string): Promise<string> {
    return getSignedUrl(this.presigner, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: this.ttlSeconds,
    });
  }

  /** Clients fetch S3 objects from S3 itself (presigned URLs); nothing is streamed through the API. */
  async read(_key: string): Promise<StoredObject | null> {
    return null;
  }

  /** A GET, its body streamed as it arrives (the caller counts and caps it). */
  async open(key: string, signal?: AbortSignal): Promise<StoredObject | null> {
    try {
      const res = await this.call('a GET', signal, () =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }),
      );
      return {
        stream: res.Body as Readable,
        size: res.ContentLength ?? 0,
        contentType: res.ContentType ?? 'application/octet-stream',
      };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.call('a DELETE', undefined, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    ).catch((err: unknown) => {
      if (!isMissing(err)) throw err;
    });
  }

  /**
   * Runs one SDK call (retried by the SDK): a cancel or task timeout goes up as it is, a missing key as the SDK's
   * error (callers decide), anything else as a transient storage failure naming the status and S3's error code.
   */
  private async call<T>(what: string, signal: AbortSignal | undefined, run: () => Promise<T>, body?: Readable) {
    try {
      return await run();
    } catch (err) {
      body?.destroy();
      if (signal?.aborted) throw err; // cancel or task timeout: the processor knows which
      // A failure of the stream being stored (its size cap, its source) is the caller's to word.
      if (err instanceof ProviderError) throw err;
      if (isMissing(err)) throw err;
      const status = (err as S3ServiceException).$metadata?.httpStatusCode;
      const code = (err as { Code?: string; code?: string; name?: string }).name;
      throw ProviderError.transient(
        STORAGE_UNAVAILABLE,
        status
          ? `output storage answered ${status}${code ? ` (${code})` : ''} to ${what}`
          : `output storage unreachable for ${what} (${(err as { code?: string }).code ?? code})`,
      );
    }
  }
}

/** No such object (a missing bucket is a configuration fault, reported as storage failing). */
function isMissing(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}
