import { Module } from '@nestjs/common';
import { SubtitleEngineProvider } from './adapters/subtitles/subtitle-engine.provider';
import { ProviderHealthService } from './provider-health.service';
import { MEDIA_PROVIDERS, MediaProvider } from './provider.port';
import { ProviderRegistry } from './provider.registry';

const ADAPTERS = [SubtitleEngineProvider];

@Module({
  providers: [
    ...ADAPTERS,
    {
      provide: MEDIA_PROVIDERS,
      inject: ADAPTERS,
      useFactory: (...adapters: MediaProvider[]) => adapters,
    },
    ProviderHealthService,
    ProviderRegistry,
  ],
  exports: [ProviderRegistry, ProviderHealthService],
})
export class ProvidersModule {}
