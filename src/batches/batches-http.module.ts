import { Module } from '@nestjs/common';
import { TasksModule } from '../tasks/tasks.module';
import { BatchesController } from './batches.controller';
import { BatchesModule } from './batches.module';
import { BatchesService } from './batches.service';

/** The HTTP face of batches, mounted by the API role only. */
@Module({
  imports: [TasksModule, BatchesModule],
  controllers: [BatchesController],
  providers: [BatchesService],
})
export class BatchesHttpModule {}
