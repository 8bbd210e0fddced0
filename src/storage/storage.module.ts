import { Module } from '@nestjs/common';
import { AppConfig, StorageSettings } from '../config/app-config';
import { SecurityModule } from '../security/security.module';
import { FilesController } from './files.controller';
import { LocalStorageBackend } from './local-storage.backend';
import { S3StorageBackend } from './s3-storage.backend';
import { StorageBackend } from './storage.backend';
import { StorageService } from './storage.service';

export function createStorageBackend(settings: StorageSettings): StorageBackend {
  switch (settings.backend) {
    case 'local':
      return new LocalStorageBackend({
        dir: settings.localDir,
        secret: settings.signingSecret,
        ttlSeconds: settings.urlTtlSeconds,
        publicBaseUrl: settings.publicBaseUrl,
      });
    case 's3':
      return new S3StorageBackend(settings.s3, settings.urlTtlSeconds);
  }
}

/** Output storage (OUTPUT_STORAGE picks the backend) and the route serving local files. */
@Module({
  imports: [SecurityModule],
  providers: [
    {
      provide: StorageBackend,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => createStorageBackend(config.storage),
    },
    StorageService,
  ],
  controllers: [FilesController],
  exports: [StorageService],
})
export class StorageModule {}
