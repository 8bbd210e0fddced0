import { Module } from '@nestjs/common';
import { ApiKeysHttpModule } from './api-keys/api-keys-http.module';
import { BatchesHttpModule } from './batches/batches-http.module';
import { CacheHttpModule } from './cache/cache.module';
import { CreditsHttpModule } from './credits/credits.module';
import { DashboardModule } from './dashboard/admin-session-revocations';
import { EventsHttpModule } from './events/events-http.module';
import { FlowsHttpModule } from './flows/flows.module';
import { FlowHooksHttpModule } from './flows/triggers/flow-triggers.module';
import { ProvidersHttpModule } from './providers/providers-http.module';
import { QueueAdminHttpModule } from './queue/queue-admin.module';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { ImageJobsHttpModule } from './sources/image-jobs.module';
import { VideoJobsHttpModule } from './sources/video-jobs.module';
import { TasksHttpModule } from './tasks/tasks-http.module';
import { UploadsHttpModule } from './uploads/uploads-http.module';
import { WebhooksHttpModule } from './webhooks/webhooks.module';

/**
 * The HTTP routes (APP_ROLE=api and all). AppModule imports this file only in those roles, so a worker never loads
 * the controllers, their DTOs or what only they use.
 */
@Module({
  imports: [
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
  ],
})
export class ApiHttpModule {}
