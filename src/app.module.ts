import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { AuthModule } from './auth/auth.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { dataSourceOptions } from './database/data-source';
import { EventsModule } from './events/events.module';
import { HealthModule } from './health/health.module';
import { loggerOptions } from './logging/logger.options';
import { ProcessingModule } from './processing/processing.module';
import { QueueModule } from './queue/queue.module';
import { TasksHttpModule } from './tasks/tasks-http.module';
import { TasksModule } from './tasks/tasks.module';

/**
 * One code base, two halves: APP_ROLE=api mounts the HTTP routes, APP_ROLE=worker registers the processors, `all`
 * does both. Health answers in every role.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerOptions(config)),
        TypeOrmModule.forRoot(dataSourceOptions(config.databaseUrl, config.databasePoolSize)),
        QueueModule,
        EventsModule,
        AuthModule,
        TasksModule,
        HealthModule,
        ...(config.runsApi ? [TasksHttpModule] : []),
        ...(config.runsWorkers ? [ProcessingModule] : []),
      ],
    };
  }
}
