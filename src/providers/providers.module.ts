import { Module } from '@nestjs/common';
import { SubtitleEngineProvider } from './adapters/subtitles/subtitle-engine.provider';
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
    ProviderRegistry,
  ],
  exports: [ProviderRegistry],
})
export class ProvidersModule {}
