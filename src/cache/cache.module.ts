import { providerByBackend } from '../common/backend-provider';
import { Global, Module } from '@nestjs/common';
import { CacheController } from './cache.controller';
import { PostgresCacheState } from './postgres-cache-state';
import { RedisCacheState } from './redis-cache-state';
import { ResultCache } from './result-cache.service';
import { SharedCacheState } from './shared-cache-state';

/** The result cache, used by workers; its endpoints are mounted by the API role (CacheHttpModule). */
@Global()
@Module({
  providers: [
    providerByBackend(SharedCacheState, { redis: RedisCacheState, postgres: PostgresCacheState }),
    ResultCache,
  ],
  exports: [ResultCache],
})
export class ResultCacheModule {}

@Module({ controllers: [CacheController] })
export class CacheHttpModule {}
