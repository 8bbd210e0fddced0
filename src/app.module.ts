import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { AuthModule } from './auth/auth.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { dataSourceOptions } from './database/data-source';
import { DatabaseModule } from './database/database.module';
import { EventsModule } from './events/events.module';
import { ResultCacheModule } from './cache/cache.module';
import { FlowsModule } from './flows/flows.module';
import { FlowTriggersModule } from './flows/triggers/flow-triggers.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { loggerOptions } from './logging/logger.options';
import { MetricsModule } from './metrics/metrics.module';
import { QueueModule } from './queue/queue.module';
import { SecurityModule } from './security/security.module';
import { TasksModule } from './tasks/tasks.module';
import { UploadsModule } from './uploads/uploads.module';

export interface AppExtras {
  /**
   * Modules only some deployments load, through a dynamic import in main.ts: the sandbox's in PROVIDERS_MODE=sandbox,
   * so that a live deployment never loads the emulators.
   */
  modules?: DynamicModule[];
}

/**
 * One code base, two halves: APP_ROLE=api mounts the HTTP routes, APP_ROLE=worker registers the processors, `all`
 * does both. Health and /metrics answer in every role.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, extras: AppExtras = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        TypeOrmModule.forRoot(dataSourceOptions(config.databaseUrl, config.databasePoolSize)),
        DatabaseModule,
        QueueModule,
        IdempotencyModule,
        ResultCacheModule,
        SecurityModule,
        EventsModule,
        AuthModule,
        UploadsModule,
        TasksModule,
        FlowsModule,
        FlowTriggersModule,
        HealthModule,
        MetricsModule,
        // Each half is imported only where it runs: a worker loads no controller (nor what only routes use), the API
        // role no processor.
        ...(config.runsApi
          ? [import('./api-http.module').then(({ ApiHttpModule }) => ({ module: ApiHttpModule }))]
          : []),
        ...(config.runsWorkers
          ? [import('./worker.module').then(({ WorkerModule }) => ({ module: WorkerModule }))]
          : []),
        ...(extras.modules ?? []),
      ],
    };
  }
}
