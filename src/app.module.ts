import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { ApiKeysHttpModule } from './api-keys/api-keys-http.module';
import { AuthModule } from './auth/auth.module';
import { BatchesHttpModule } from './batches/batches-http.module';
import { CreditsHttpModule } from './credits/credits.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { dataSourceOptions } from './database/data-source';
import { DatabaseModule } from './database/database.module';
import { EventsHttpModule } from './events/events-http.module';
import { EventsModule } from './events/events.module';
import { CacheHttpModule, ResultCacheModule } from './cache/cache.module';
import { FlowsHttpModule, FlowsModule, FlowsWorkerModule } from './flows/flows.module';
import { FlowHooksHttpModule, FlowTriggersModule } from './flows/triggers/flow-triggers.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { loggerOptions } from './logging/logger.options';
import { DashboardModule } from './dashboard/admin-session-revocations';
import { MetricsModule } from './metrics/metrics.module';
import { ProcessingModule } from './processing/processing.module';
import { ProvidersHttpModule } from './providers/providers-http.module';
import { QueueAdminHttpModule } from './queue/queue-admin.module';
import { QueueModule } from './queue/queue.module';
import { ImageJobsHttpModule } from './sources/image-jobs.module';
import { VideoJobsHttpModule } from './sources/video-jobs.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { SecurityModule } from './security/security.module';
import { TasksHttpModule } from './tasks/tasks-http.module';
import { TasksModule } from './tasks/tasks.module';
import { UploadsHttpModule } from './uploads/uploads-http.module';
import { UploadsModule } from './uploads/uploads.module';
import { WebhookDeliveryModule, WebhooksHttpModule } from './webhooks/webhooks.module';

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
        ...(config.runsApi
          ? [
              TasksHttpModule,
              ProvidersHttpModule,
              BatchesHttpModule,
              WebhooksHttpModule,
              EventsHttpModule,
              QueueAdminHttpModule,
              RateLimitModule,
              CacheHttpModule,
              ApiKeysHttpModule,
              CreditsHttpModule,
              VideoJobsHttpModule,
              ImageJobsHttpModule,
              DashboardModule,
              UploadsHttpModule,
              FlowsHttpModule,
              FlowHooksHttpModule,
            ]
          : []),
        ...(config.runsWorkers ? [ProcessingModule, WebhookDeliveryModule, FlowsWorkerModule] : []),
        ...(extras.modules ?? []),
      ],
    };
  }
}
