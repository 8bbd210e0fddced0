import { Global, Module } from '@nestjs/common';
import { requireRedis } from '../common/state-backend';
import { AppConfig } from '../config/app-config';
import { SqlClient } from '../database/sql-client';
import { RedisService } from '../queue/redis.service';
import { CacheController } from './cache.controller';
import { PostgresCacheState } from './postgres-cache-state';
import { RedisCacheState } from './redis-cache-state';
import { ResultCache } from './result-cache.service';
import { SharedCacheState } from './shared-cache-state';

/** The result cache, used by workers; its endpoints are mounted by the API role (CacheHttpModule). */
@Global()
@Module({
  providers: [
    {
      // Redis is optional here: a process on the Postgres backend may have no Redis client at all.
      provide: SharedCacheState,
      inject: [AppConfig, SqlClient, { token: RedisService, optional: true }],
      useFactory: (config: AppConfig, sql: SqlClient, redis?: RedisService): SharedCacheState =>
        config.queueBackend === 'postgres'
          ? new PostgresCacheState(sql, config.databaseUrl)
          : new RedisCacheState(requireRedis(redis)),
    },
    ResultCache,
  ],
  exports: [ResultCache],
})
export class ResultCacheModule {}

@Module({ controllers: [CacheController] })
export class CacheHttpModule {}
