import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsEnum, IsIn, IsOptional } from 'class-validator';
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
}

export class ScopeQueryDto {
  @ApiPropertyOptional({ enum: ['own', 'all'], default: 'own' })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}
