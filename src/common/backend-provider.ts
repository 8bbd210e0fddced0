import type { Abstract, Provider, Type } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { AppConfig } from '../config/app-config';

/**
 * A port's provider that builds the Redis or the Postgres implementation as QUEUE_BACKEND says. Only the chosen class
 * is built (through the module's injector, so its own dependencies are resolved as usual): a Postgres deployment never
 * makes a Redis client for it, and the reverse.
 */
export function providerByBackend<T>(
  port: Abstract<T>,
  implementations: { redis: Type<T>; postgres: Type<T> },
): Provider {
  return {
    provide: port,
    inject: [AppConfig, ModuleRef],
    useFactory: (config: AppConfig, moduleRef: ModuleRef): Promise<T> =>
      moduleRef.create(config.queueBackend === 'postgres' ? implementations.postgres : implementations.redis),
  };
}
