import { Injectable, Logger } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AuthUser } from '../auth/auth.types';
import {
  DomainException,
  ErrorCode,
  FieldProblem,
  NotFoundException,
  ValidationException,
} from '../common/domain-exception';
import { isUuid } from '../common/uuid';
import { AppConfig } from '../config/app-config';
import { UPLOAD_PREFIX, uploadReferencesOf } from '../providers/stored-media';
import { extensionFor, ObjectBody } from '../storage/storage.backend';
import { sanitizeFilename, StorageService } from '../storage/storage.service';
import { UploadResponseDto } from './dto/upload-response.dto';
import { UploadEntity } from './entities/upload.entity';
import { chunkFits, SNIFF_BYTES, sniffMediaType } from './media-sniffer';
import { UploadsRepository } from './uploads.repository';

/** The file part of an upload request as the multipart parser hands it over: a stream, truncated past the limit. */
export interface IncomingFile {
  stream: Readable & { truncated?: boolean };
  filename?: string;
}

/** Expired uploads deleted per sweep (the next sweep takes the rest). */
const SWEEP_BATCH = 500;

/**
 * Files users send (POST /api/v1/media/uploads) so their tasks can name them as `upload:<id>`: streamed into storage
 * with their type told from their bytes, their size capped (UPLOAD_MAX_BYTES) and hashed on the way, usable by their
 * owner until UPLOAD_TTL, then swept.
 */
@Injectable()
export class UploadsService {
  private readonly logger = new Logger('Uploads');

  constructor(
    private readonly uploads: UploadsRepository,
    private readonly storage: StorageService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Streams the file into a temp file (hashing, counting, sniffing on the way), then into storage, then writes the
   * row. 415 when its bytes are no media the platform reads, 413 past UPLOAD_MAX_BYTES; nothing is kept then.
   */
  async receive(user: AuthUser, file: IncomingFile): Promise<UploadResponseDto> {
    const { maxBytes } = this.config.uploads;
    const dir = await mkdtemp(join(tmpdir(), 'media-upload-'));
    try {
      const temp = join(dir, 'file');
      const inspector = new UploadInspector();
      await pipeline(file.stream, inspector, createWriteStream(temp)).catch((err: unknown) => {
        if (file.stream.truncated) throw tooLarge(maxBytes);
        throw err;
      });
      if (file.stream.truncated || inspector.size > maxBytes) throw tooLarge(maxBytes);
      const body = { file: temp, move: true, size: inspector.size, sha256: inspector.sha256 };
      return await this.keep(user, body, inspector.contentType!, file.filename);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Stores bytes the platform holds (the sandbox's sample media) as the user's upload, checked as `receive` checks a
   * sent file: 415 when they are no media the platform reads, 413 past UPLOAD_MAX_BYTES.
   */
  async store(user: AuthUser, bytes: Buffer, filename?: string): Promise<UploadResponseDto> {
    const { maxBytes } = this.config.uploads;
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    if (bytes.length === 0) throw emptyFile();
    const contentType = typeOfHead(bytes, bytes.length < SNIFF_BYTES);
    if (contentType instanceof DomainException) throw contentType;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return this.keep(user, { data: bytes, size: bytes.length, sha256 }, contentType, filename);
  }

  async get(user: AuthUser, id: string): Promise<UploadResponseDto> {
    return toResponse(await this.findOwned(user, id));
  }

  /** Deletes the upload now: the stored file, then the row. */
  async delete(user: AuthUser, id: string): Promise<void> {
    const upload = await this.findOwned(user, id);
    await this.storage.delete(upload.key);
    await this.uploads.delete(upload.id);
  }

  /**
   * The submit check of every `upload:<id>` in a task's input, at any depth: it must exist, be the user's and not
   * have expired. One problem per bad field, named by its path (`images[2].image_url`).
   */
  async problemsOf(owner: string, input: Record<string, unknown>, now = new Date()): Promise<FieldProblem[]> {
    const refs = uploadReferencesOf(input);
    if (refs.length === 0) return [];
    const found = new Map((await this.uploads.findByIds([...new Set(refs.map((r) => r.id))])).map((u) => [u.id, u]));
    const problems: FieldProblem[] = [];
    for (const { field, id } of refs) {
      const upload = found.get(id);
      // Someone else's upload answers as a missing one: ids are not for guessing.
      if (!upload || upload.owner !== owner) {
        problems.push({ field, message: `${field}: upload:${id} is not an upload of yours` });
      } else if (upload.expiresAt.getTime() <= now.getTime()) {
        problems.push({
          field,
          message: `${field}: upload:${id} has expired (uploads are kept ${this.config.uploads.ttlSeconds} s, UPLOAD_TTL)`,
        });
      }
    }
    return problems;
  }

  /** 400 naming each field whose `upload:` reference the user may not use (see problemsOf). */
  async assertUsable(owner: string, input: Record<string, unknown>): Promise<void> {
    const problems = await this.problemsOf(owner, input);
    if (problems.length) throw new ValidationException(problems);
  }

  /** Deletes uploads past their time, files first (a file left by a crash between the two is deleted next time). */
  async sweepExpired(now = new Date()): Promise<number> {
    return (await this.deleteAll(await this.uploads.findExpired(now, SWEEP_BATCH))).files;
  }

  /** Deletes uploads made before `before` (OUTPUT_RETENTION_DAYS), whatever their TTL; answers what was freed. */
  async sweepCreatedBefore(before: Date): Promise<{ files: number; bytes: number }> {
    return this.deleteAll(await this.uploads.findCreatedBefore(before, SWEEP_BATCH));
  }

  private async deleteAll(uploads: UploadEntity[]): Promise<{ files: number; bytes: number }> {
    const freed = { files: 0, bytes: 0 };
    for (const upload of uploads) {
      try {
        await this.storage.delete(upload.key);
        await this.uploads.delete(upload.id);
        freed.files++;
        freed.bytes += Number(upload.size);
      } catch (err) {
        this.logger.warn({ uploadId: upload.id }, `upload not deleted: ${(err as Error).message}`);
      }
    }
    return freed;
  }

  /** Puts a checked file into storage and writes its row; the stored file goes again when the row cannot be written. */
  private async keep(
    user: AuthUser,
    body: ObjectBody,
    contentType: string,
    filename: string | undefined,
  ): Promise<UploadResponseDto> {
    const id = randomUUID();
    const key = `uploads/${id}.${extensionFor(contentType) ?? 'bin'}`;
    await this.storage.put(key, body, contentType);
    const createdAt = new Date();
    const upload: UploadEntity = {
      id,
      owner: user.id,
      key,
      contentType,
      size: body.size,
      sha256: body.sha256,
      filename: filename ? sanitizeFilename(filename, 0) : null,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + this.config.uploads.ttlSeconds * 1000),
    };
    try {
      await this.uploads.insert(upload);
    } catch (err) {
      await this.storage.delete(key).catch(() => undefined);
      throw err;
    }
    return toResponse(upload);
  }

  private async findOwned(user: AuthUser, id: string): Promise<UploadEntity> {
    const upload = isUuid(id) ? await this.uploads.findById(id) : null;
    if (!upload || (upload.owner !== user.id && !user.isAdmin) || upload.expiresAt.getTime() <= Date.now()) {
      throw new NotFoundException('upload', id);
    }
    return upload;
  }
}

function tooLarge(maxBytes: number): DomainException {
  return new DomainException(
    ErrorCode.PayloadTooLarge,
    `the file is larger than ${maxBytes} bytes (UPLOAD_MAX_BYTES)`,
    { limit: maxBytes },
  );
}

function toResponse(upload: UploadEntity): UploadResponseDto {
  return {
    id: upload.id,
    url: `${UPLOAD_PREFIX}${upload.id}`,
    content_type: upload.contentType,
    size: upload.size,
    sha256: upload.sha256,
    filename: upload.filename,
    expires_at: upload.expiresAt.toISOString(),
    created_at: upload.createdAt.toISOString(),
  };
}

/**
 * Passes an upload's bytes through while hashing and counting them, holding the first SNIFF_BYTES back until their
 * type is told: 415 (nothing written past the head) when they are no media the platform reads, or when text turns
 * out to hold a NUL byte further on.
 */
class UploadInspector extends Transform {
  size = 0;
  contentType?: string;
  private readonly hash = createHash('sha256');
  private head: Buffer[] = [];
  private headBytes = 0;

  get sha256(): string {
    return (this.digest ??= this.hash.digest('hex'));
  }
  private digest?: string;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    if (this.contentType === undefined) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (this.headBytes < SNIFF_BYTES) return done();
      return done(this.decide(false));
    }
    if (!chunkFits(this.contentType, chunk)) return done(unsupported('text with binary bytes in it'));
    this.push(chunk);
    done();
  }

  override _flush(done: (err?: Error | null) => void): void {
    if (this.contentType !== undefined) return done();
    if (this.headBytes === 0) return done(emptyFile());
    done(this.decide(true));
  }

  /** Tells the type from the head and lets the held bytes through; the error when there is none. */
  private decide(complete: boolean): Error | null {
    const head = Buffer.concat(this.head);
    this.head = [];
    const type = typeOfHead(head, complete);
    if (type instanceof DomainException) return type;
    this.contentType = type;
    this.push(head);
    return null;
  }
}

/** The media type of a file told from its head (`complete`: the whole file), or the 415 that refuses it. */
function typeOfHead(head: Buffer, complete: boolean): string | DomainException {
  const type = sniffMediaType(head.subarray(0, SNIFF_BYTES), complete);
  if (!type) return unsupported('no image, video, audio, subtitle or text format the platform reads');
  if (!chunkFits(type, head)) return unsupported('text with binary bytes in it');
  return type;
}

function emptyFile(): ValidationException {
  return new ValidationException([{ field: 'file', message: 'file: the file is empty' }]);
}

function unsupported(what: string): DomainException {
  return new DomainException(
    ErrorCode.UnsupportedMediaType,
    `the file's bytes are ${what} (png, jpeg, webp, gif, mp4, mov, webm, mp3, wav, ogg, opus, flac, m4a, srt, vtt or plain text)`,
  );
}
