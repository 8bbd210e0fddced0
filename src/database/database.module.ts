import { Global, Module } from '@nestjs/common';
import { PostgresNotifications } from './postgres-notifications';
import { SqlClient } from './sql-client';

/**
 * Hand-written SQL's client, for the repositories of every module, and LISTEN/NOTIFY (its connection is made on first
 * use only). TypeORM's data source is TypeOrmModule's.
 */
@Global()
@Module({ providers: [SqlClient, PostgresNotifications], exports: [SqlClient, PostgresNotifications] })
export class DatabaseModule {}
