import { ApiPropertyOptional, PickType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsEnum, IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto';
import { TaskStatus, TaskType } from '../task.enums';

export class TaskSearchDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: TaskType, enumName: 'TaskType', example: TaskType.ImageGeneration })
  @IsOptional()
  @IsEnum(TaskType)
  task_type?: TaskType;

  @ApiPropertyOptional({ enum: TaskStatus, enumName: 'TaskStatus', example: TaskStatus.Completed })
  @IsOptional()
  @IsEnum(TaskStatus)
  status?: TaskStatus;

  @ApiPropertyOptional({ type: String, format: 'date-time', example: '2026-12-01T00:00:00Z' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'created_after must be an ISO-8601 date' })
  created_after?: Date;

  @ApiPropertyOptional({ type: String, format: 'date-time', example: '2026-12-31T00:00:00Z' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'created_before must be an ISO-8601 date' })
  created_before?: Date;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'The parts of this split task (each has part_index); without it, parts are not listed',
    example: '9b1c6f1e-3f57-4c43-9d1a-5c2f0e6a7b21',
  })
  @IsOptional()
  @IsUUID('all', { message: 'parent_id must be a task id' })
  parent_id?: string;
}

/** `?scope=own|all` alone (all: every user's, for admins). */
export class ScopeQueryDto extends PickType(PageQueryDto, ['scope'] as const) {}
