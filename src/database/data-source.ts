import { join } from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { ApiKeyEntity } from '../api-keys/entities/api-key.entity';
import { AdminSessionRevocationEntity } from '../dashboard/entities/admin-session-revocation.entity';
import { BatchEntity } from '../batches/entities/batch.entity';
import { CreditAccountEntity, CreditEntryEntity } from '../credits/entities/credit.entities';
import {
  CacheCounterEntity,
  CacheFirstCallEntity,
  CacheFirstCallWaiterEntity,
} from '../cache/entities/cache-state.entities';
import { IdempotencyKeyEntity } from '../idempotency/entities/idempotency-key.entity';
import {
  ProviderHealthEntity,
  ProviderLeaseEntity,
  ProviderLineEntity,
} from '../providers/entities/provider-state.entities';
import { RateLimitEntity } from '../rate-limit/entities/rate-limit.entity';
import { HeldConnectionEntity } from '../rate-limit/entities/held-connection.entity';
import { FlowEntity, FlowRunEntity, FlowStepEntity, FlowVersionEntity } from '../flows/entities/flow.entities';
import { TaskEntity } from '../tasks/entities/task.entity';
import { UploadEntity } from '../uploads/entities/upload.entity';
import { WebhookDeliveryEntity } from '../webhooks/entities/webhook-delivery.entity';
import { WebhookHostAttemptEntity } from '../webhooks/entities/webhook-host-attempt.entity';

/** Every table's entity (the migrations table aside); test/schema-drift.int.spec.ts checks them against the migrations. */
export const ENTITIES = [
  AdminSessionRevocationEntity,
  TaskEntity,
  BatchEntity,
  FlowEntity,
  FlowVersionEntity,
  FlowRunEntity,
  FlowStepEntity,
  WebhookDeliveryEntity,
  IdempotencyKeyEntity,
  ApiKeyEntity,
  ProviderHealthEntity,
  ProviderLeaseEntity,
  ProviderLineEntity,
  CacheFirstCallEntity,
  CacheFirstCallWaiterEntity,
  CacheCounterEntity,
  RateLimitEntity,
  HeldConnectionEntity,
  WebhookHostAttemptEntity,
  CreditAccountEntity,
  CreditEntryEntity,
  UploadEntity,
];

/** One set of options for the app, the migration runner and the tests; `synchronize` is never used. */
export function dataSourceOptions(url: string, poolSize = 10): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    // Compiled (dist/migrations/*.js) in production, TypeScript under ts-jest.
    migrations: [join(__dirname, '..', '..', 'migrations', '*.{js,ts}')],
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    // TypeORM's logger would print query parameters (webhook secrets among them): errors surface as exceptions.
    logging: false,
    extra: poolOptions(poolSize),
  };
}

/** The `pg` pool options of TypeORM's pool and of SqlClient's. */
export function poolOptions(poolSize: number) {
  return {
    max: poolSize,
    // Fail fast when Postgres is unreachable, so requests get a 503 instead of hanging.
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
    application_name: 'media-tasks',
  };
}

export function createDataSource(url: string, poolSize?: number): DataSource {
  return new DataSource(dataSourceOptions(url, poolSize));
}
