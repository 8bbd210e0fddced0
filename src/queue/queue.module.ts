import { getQueueToken } from '@nestjs/bullmq';
import { FactoryProvider, Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { SqlClient } from '../database/sql-client';
import { PostgresQueueBackend } from './postgres-queue-backend';
import { QueueName } from './queue.constants';
import { QueueBackend } from './queue-backend';
import { QueueGateway } from './queue.gateway';
import { RedisQueueBackend } from './redis-queue-backend';
import { RedisService } from './redis.service';
import { providerByBackend } from '../common/backend-provider';
import { PostgresTaskSignals } from './postgres-task-signals';
import { RedisTaskSignals } from './redis-task-signals';
import { TaskSignalsService } from './task-signals.service';

/** QUEUE_BACKEND picks where BullMQ lives, once, here; anything but `postgres` (resolved at boot) is Redis. */
const queueBackendProvider: FactoryProvider<QueueBackend> = {
  provide: QueueBackend,
  inject: [AppConfig, RedisService, SqlClient],
  useFactory: (config: AppConfig, redis: RedisService, sql: SqlClient) =>
    config.queueBackend === 'postgres' ? new PostgresQueueBackend(config, sql) : new RedisQueueBackend(config, redis),
};

/** Each queue under @nestjs/bullmq's token, so `@InjectQueue(name)` finds it whatever the backend. */
const queueProviders: FactoryProvider[] = Object.values(QueueName).map((name) => ({
  provide: getQueueToken(name),
  inject: [QueueBackend],
  useFactory: (backend: QueueBackend) => backend.createQueue(name),
}));

/** Queue plumbing: the BullMQ backend, the queues, the enqueue gateway and cross-process signals. */
@Global()
@Module({
  providers: [
    queueBackendProvider,
    ...queueProviders,
    RedisService,
    QueueGateway,
    providerByBackend(TaskSignalsService, { redis: RedisTaskSignals, postgres: PostgresTaskSignals }),
  ],
  exports: [QueueBackend, ...queueProviders.map((p) => p.provide), RedisService, QueueGateway, TaskSignalsService],
})
export class QueueModule {}
