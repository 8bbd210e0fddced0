import { BullModule } from '@nestjs/bullmq';
import type { ConnectionOptions } from 'bullmq';
import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { bullPrefix, QueueName } from './queue.constants';
import { QueueGateway } from './queue.gateway';
import { redisOptionsFromUrl } from './redis-options';
import { RedisService } from './redis.service';
import { providerByBackend } from '../common/backend-provider';
import { PostgresTaskSignals } from './postgres-task-signals';
import { RedisTaskSignals } from './redis-task-signals';
import { TaskSignalsService } from './task-signals.service';

/** Queue plumbing: BullMQ connections, the queues, the enqueue gateway and cross-process signals. */
@Global()
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        connection: {
          ...redisOptionsFromUrl(config.redisUrl),
          connectionName: `${config.redisPrefix}:bullmq`,
        } as ConnectionOptions,
        prefix: bullPrefix(config.redisPrefix),
      }),
    }),
    BullModule.registerQueue({ name: QueueName.Tasks }, { name: QueueName.Maintenance }, { name: QueueName.Webhooks }),
  ],
  providers: [
    RedisService,
    QueueGateway,
    providerByBackend(TaskSignalsService, { redis: RedisTaskSignals, postgres: PostgresTaskSignals }),
  ],
  exports: [BullModule, RedisService, QueueGateway, TaskSignalsService],
})
export class QueueModule {}
