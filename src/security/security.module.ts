import { Global, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MediaUrlGuard, OutputUrlGuard, UrlGuard } from './url-guard';

/** The guard of media inputs: the URL guard with MEDIA_ALLOWED_PORTS. */
export function mediaUrlGuard(config: AppConfig): MediaUrlGuard {
  return new MediaUrlGuard(config.allowPrivateAddresses, { allowedPorts: config.mediaAllowedPorts });
}

/** The guard of provider output downloads: the URL guard, the providers' own origins trusted. */
export function outputUrlGuard(config: AppConfig): OutputUrlGuard {
  return new OutputUrlGuard(config.allowPrivateAddresses, { trustedOrigins: config.providerOutputOrigins });
}

/**
 * The URL guards: `UrlGuard` for webhooks, `MediaUrlGuard` for media inputs, `OutputUrlGuard` for provider outputs.
 */
@Global()
@Module({
  providers: [
    { provide: UrlGuard, inject: [AppConfig], useFactory: (c: AppConfig) => new UrlGuard(c.allowPrivateAddresses) },
    { provide: MediaUrlGuard, inject: [AppConfig], useFactory: mediaUrlGuard },
    { provide: OutputUrlGuard, inject: [AppConfig], useFactory: outputUrlGuard },
  ],
  exports: [UrlGuard, MediaUrlGuard, OutputUrlGuard],
})
export class SecurityModule implements OnApplicationShutdown {
  constructor(
    private readonly guard: UrlGuard,
    private readonly media: MediaUrlGuard,
    private readonly outputs: OutputUrlGuard,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.guard.close(), this.media.close(), this.outputs.close()]);
  }
}
