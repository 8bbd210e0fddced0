import { Module } from '@nestjs/common';
import { AppConfig, StorageSettings } from '../config/app-config';
import { SecurityModule } from '../security/security.module';
import { FilesController } from './files.controller';
import { LocalStorageBackend } from './local-storage.backend';
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
    case 's3': {
      // The AWS SDK (about 20 MiB once loaded) only where OUTPUT_STORAGE=s3.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { S3StorageBackend } = require('./s3-storage.backend') as typeof import('./s3-storage.backend');
      return new S3StorageBackend(settings.s3, settings.urlTtlSeconds);
    }
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
