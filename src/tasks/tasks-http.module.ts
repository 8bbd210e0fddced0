import { Module } from '@nestjs/common';
import { ProvidersController } from '../providers/providers.controller';
import { TasksController } from './tasks.controller';
import { TasksModule } from './tasks.module';

/** The HTTP face of tasks and providers, mounted by the API role only. */
@Module({ imports: [TasksModule], controllers: [TasksController, ProvidersController] })
export class TasksHttpModule {}
