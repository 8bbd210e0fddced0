import { Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { AppConfig } from '../config/app-config';
import { ProviderError, ProviderErrorCode } from '../providers/provider.port';
import { StoredMedia, unlinkableUpload } from '../providers/stored-media';
import { StorageService } from '../storage/storage.service';
import { UploadEntity } from './entities/upload.entity';
import { UploadsRepository } from './uploads.repository';

/**
 * Uploads as providers reach them (the StoredMedia port): the stored bytes for adapters that fetch their inputs, a
 * signed link for those whose vendor fetches them. Ownership was checked at submit; here an upload past its time
 * counts as gone, as it will be once swept.
 */
@Injectable()
export class StoredUploads extends StoredMedia {
  constructor(
    private readonly uploads: UploadsRepository,
    private readonly storage: StorageService,
    private readonly config: AppConfig,
  ) {
    super();
  }

  async open(
    id: string,
    signal?: AbortSignal,
  ): Promise<{ stream: Readable; size: number; contentType: string } | null> {
    const upload = await this.find(id);
    if (!upload) return null;
    const stored = await this.storage.open(upload.key, signal);
    // The row's type is the sniffed one; a backend may only know the extension's.
    return stored && { stream: stored.stream, size: stored.size || upload.size, contentType: upload.contentType };
  }

  /**
   * The stored file's signed link, absolute: S3's presigned URL, or a local `/files/…` link on PUBLIC_BASE_URL (else
   * PUBLIC_URL), which a vendor can fetch only when one of them is set.
   */
  async link(id: string): Promise<string> {
    const upload = await this.find(id);
    if (!upload)
      throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, `upload:${id} has expired or was deleted`);
    const url = await this.storage.signedUrl(upload.key);
    if (/^https?:\/\//.test(url)) return url;
    const base = this.config.publicUrl;
    if (!base) throw ProviderError.permanent(ProviderErrorCode.InputUnreachable, unlinkableUpload(id));
    return `${base}${url}`;
  }

  /** What `link` needs: S3 (presigned URLs), or PUBLIC_BASE_URL or PUBLIC_URL to put a local link on. */
  canLink(): boolean {
    const { backend, publicBaseUrl } = this.config.storage;
    return backend === 's3' || publicBaseUrl !== '' || this.config.publicUrl !== undefined;
  }

  private async find(id: string): Promise<UploadEntity | null> {
    const upload = await this.uploads.findById(id);
    return upload && upload.expiresAt.getTime() > Date.now() ? upload : null;
  }
}
