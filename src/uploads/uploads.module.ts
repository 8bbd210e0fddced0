import { Global, Module } from '@nestjs/common';
import { StoredMedia } from '../providers/stored-media';
import { StorageModule } from '../storage/storage.module';
import { StoredUploads } from './stored-uploads';
import { UploadsRepository } from './uploads.repository';
import { UploadsService } from './uploads.service';

/**
 * Uploads in every role: the service (receive, submit checks, sweep) and the StoredMedia port through which providers
 * read `upload:<id>` inputs. Global, so the provider registry and adapters find the port without importing it.
 */
@Global()
@Module({
  imports: [StorageModule],
  providers: [UploadsRepository, UploadsService, StoredUploads, { provide: StoredMedia, useExisting: StoredUploads }],
  exports: [UploadsService, StoredMedia],
})
export class UploadsModule {}
