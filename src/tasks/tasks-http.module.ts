import { Module } from '@nestjs/common';
import { TasksController } from './tasks.controller';
import { TasksModule } from './tasks.module';

/** The HTTP face of tasks, mounted by the API role only. */
@Module({ imports: [TasksModule], controllers: [TasksController] })
export class TasksHttpModule {}
