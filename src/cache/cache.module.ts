import { Global, Module } from '@nestjs/common';
import { CacheController } from './cache.controller';
import { ResultCache } from './result-cache.service';

/** The result cache, used by workers; its endpoints are mounted by the API role (CacheHttpModule). */
@Global()
@Module({ providers: [ResultCache], exports: [ResultCache] })
export class ResultCacheModule {}

@Module({ controllers: [CacheController] })
export class CacheHttpModule {}
