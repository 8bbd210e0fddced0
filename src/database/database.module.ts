import { Global, Module } from '@nestjs/common';
import { SqlClient } from './sql-client';

/** Hand-written SQL's client, for the repositories of every module. (TypeORM's data source is TypeOrmModule's.) */
@Global()
@Module({ providers: [SqlClient], exports: [SqlClient] })
export class DatabaseModule {}
