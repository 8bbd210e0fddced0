import { Module } from '@nestjs/common';
import { TasksHttpModule } from '../tasks/tasks-http.module';
import { TasksModule } from '../tasks/tasks.module';
import { VideoJobsController } from './video-jobs.controller';

/** The routes of the video API of the sources, for the API role. */
@Module({ imports: [TasksModule, TasksHttpModule], controllers: [VideoJobsController] })
export class VideoJobsHttpModule {}
