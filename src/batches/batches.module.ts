import { Module } from '@nestjs/common';
import { BatchesRepository } from './batches.repository';

/** Batch records, for the API and for the state machine (which closes a batch when its last task finishes). */
@Module({
  providers: [BatchesRepository],
  exports: [BatchesRepository],
})
export class BatchesModule {}
