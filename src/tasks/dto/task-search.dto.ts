import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsEnum, IsIn, IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto';
import { TaskStatus, TaskType } from '../task.enums';

export class TaskSearchDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: TaskType })
  @IsOptional()
  @IsEnum(TaskType)
  task_type?: TaskType;

  @ApiPropertyOptional({ enum: TaskStatus })
  @IsOptional()
  @IsEnum(TaskStatus)
  status?: TaskStatus;

  @ApiPropertyOptional({ type: String, format: 'date-time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'created_after must be an ISO-8601 date' })
  created_after?: Date;

  @ApiPropertyOptional({ type: String, format: 'date-time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'created_before must be an ISO-8601 date' })
  created_before?: Date;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'The parts of this split task (each has part_index); without it, parts are not listed',
  })
  @IsOptional()
  @IsUUID('all', { message: 'parent_id must be a task id' })
  parent_id?: string;
}

export class ScopeQueryDto {
  @ApiPropertyOptional({ enum: ['own', 'all'], default: 'own' })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}
