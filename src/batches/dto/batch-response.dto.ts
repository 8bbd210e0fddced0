import { ApiProperty } from '@nestjs/swagger';
import { TaskResponseDto } from '../../tasks/dto/task-response.dto';
import { TaskStatus } from '../../tasks/task.enums';
import { NextCursorProperty } from '../../common/page-query.dto';

const BATCH_ID = '0f8e2d4c-5b6a-4e3f-9c1d-2a7b8c9d0e1f';

export class BatchTaskRefDto {
  @ApiProperty({ format: 'uuid', example: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21' })
  id: string;
  @ApiProperty({ enum: TaskStatus, enumName: 'TaskStatus', example: TaskStatus.Queued })
  status: TaskStatus;
}

export class BatchCreatedResponseDto {
  @ApiProperty({ format: 'uuid', example: BATCH_ID })
  batch_id: string;
  @ApiProperty({ type: [BatchTaskRefDto], description: 'In the order submitted' })
  tasks: BatchTaskRefDto[];
  @ApiProperty({ example: `/api/v1/media/batch/${BATCH_ID}` })
  status_url: string;
}

export class BatchCountsDto {
  @ApiProperty({ description: 'Not started yet (pending or queued)', example: 0 })
  queued: number;
  @ApiProperty({ example: 1 })
  processing: number;
  @ApiProperty({ example: 8 })
  completed: number;
  @ApiProperty({ example: 1 })
  failed: number;
  @ApiProperty({ example: 0 })
  cancelled: number;
}

/** A batch without its tasks, as the list shows it (GET /batch/{id} adds the tasks). */
export class BatchSummaryDto {
  @ApiProperty({ format: 'uuid', example: BATCH_ID })
  id: string;
  @ApiProperty({ example: 10 })
  total: number;
  @ApiProperty({ type: BatchCountsDto })
  counts: BatchCountsDto;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the last task finished; null until then',
    example: null,
  })
  completed_at: string | null;
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Where batch.completed is sent; null when none',
    example: 'https://example.com/hooks/batches',
  })
  webhook_url: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, example: { campaign: 'winter' } })
  metadata: Record<string, unknown> | null;
}

export class BatchResponseDto extends BatchSummaryDto {
  @ApiProperty({ type: [TaskResponseDto] })
  tasks: TaskResponseDto[];
}

export class BatchListResponseDto {
  @ApiProperty({ type: [BatchSummaryDto], description: 'Newest first' })
  data: BatchSummaryDto[];
  @NextCursorProperty()
  next_cursor: string | null;
}
