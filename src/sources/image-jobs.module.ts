import { Module } from '@nestjs/common';
import { TasksHttpModule } from '../tasks/tasks-http.module';
import { TasksModule } from '../tasks/tasks.module';
import { ImageJobsController } from './image-jobs.controller';

/** The routes of the image app of the sources, for the API role. */
@Module({ imports: [TasksModule, TasksHttpModule], controllers: [ImageJobsController] })
export class ImageJobsHttpModule {}
