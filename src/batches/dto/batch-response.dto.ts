import { ApiProperty } from '@nestjs/swagger';
import { TaskResponseDto } from '../../tasks/dto/task-response.dto';
import { TaskStatus } from '../../tasks/task.enums';

export class BatchTaskRefDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ enum: TaskStatus })
  status: TaskStatus;
}

export class BatchCreatedResponseDto {
  @ApiProperty({ format: 'uuid' })
  batch_id: string;
  @ApiProperty({ type: [BatchTaskRefDto], description: 'In the order submitted' })
  tasks: BatchTaskRefDto[];
  @ApiProperty({ example: '/api/v1/media/batch/6f1c…' })
  status_url: string;
}

export class BatchCountsDto {
  @ApiProperty({ description: 'Not started yet (pending or queued)' })
  queued: number;
  @ApiProperty()
  processing: number;
  @ApiProperty()
  completed: number;
  @ApiProperty()
  failed: number;
  @ApiProperty()
  cancelled: number;
}

export class BatchResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty()
  total: number;
  @ApiProperty({ type: BatchCountsDto })
  counts: BatchCountsDto;
  @ApiProperty({ nullable: true, description: 'When the last task finished' })
  completed_at: string | null;
  @ApiProperty({ type: [TaskResponseDto] })
  tasks: TaskResponseDto[];
  @ApiProperty()
  created_at: string;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  metadata: Record<string, unknown> | null;
}
