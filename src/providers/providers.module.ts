import { providerByBackend } from '../common/backend-provider';
import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { AssemblyAiAdapter } from './adapters/assemblyai/assemblyai.adapter';
import { FfmpegProvider } from './adapters/ffmpeg/ffmpeg.provider';
import { FalAdapter } from './adapters/fal/fal.adapter';
import { GeminiAdapter } from './adapters/gemini/gemini.adapter';
import { ImageLocalProvider } from './adapters/image-local/image-local.provider';
import { OpenAiImagesAdapter } from './adapters/openai/openai-images.adapter';
import { OpenAiSubtitlesAdapter } from './adapters/openai/openai-subtitles.adapter';
import { OpenAiWhisperAdapter } from './adapters/openai/openai-whisper.adapter';
import { RunpodAdapter } from './adapters/runpod/runpod.adapter';
import { RunwayAdapter } from './adapters/runway/runway.adapter';
import { StabilityAdapter } from './adapters/stability/stability.adapter';
import { SubtitleEngineProvider } from './adapters/subtitles/subtitle-engine.provider';
import { CpuSlots } from './cpu-slots';
import { PostgresProviderHealth } from './postgres-provider-health';
import { ProviderHealthService } from './provider-health.service';
import { MEDIA_PROVIDERS, MediaProvider } from './provider.port';
import { ProviderRegistry } from './provider.registry';
import { RedisProviderHealth } from './redis-provider-health';

/** Every adapter; unconfigured ones (no key) are listed by GET /providers but never chosen. */
const ADAPTERS = [
  OpenAiImagesAdapter,
  StabilityAdapter,
  RunwayAdapter,
  OpenAiWhisperAdapter,
  AssemblyAiAdapter,
  RunpodAdapter,
  SubtitleEngineProvider,
  FfmpegProvider,
  OpenAiSubtitlesAdapter,
  FalAdapter,
  GeminiAdapter,
  ImageLocalProvider,
];

@Module({
  providers: [
    // One line for the process's CPU, shared by every provider that works on it.
    {
      provide: CpuSlots,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => new CpuSlots(config.localCpuConcurrency),
    },
    ...ADAPTERS,
    {
      provide: MEDIA_PROVIDERS,
      inject: ADAPTERS,
      useFactory: (...adapters: MediaProvider[]) => adapters,
    },
    providerByBackend(ProviderHealthService, { redis: RedisProviderHealth, postgres: PostgresProviderHealth }),
    ProviderRegistry,
  ],
  exports: [ProviderRegistry, ProviderHealthService],
})
export class ProvidersModule {}
