import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDate, IsEnum, IsIn, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { TaskStatus, TaskType } from '../task.enums';

export class TaskSearchDto {
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

  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number = 20;

  @ApiPropertyOptional({ description: 'Opaque: the next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cursor?: string;

  @ApiPropertyOptional({ enum: ['own', 'all'], default: 'own', description: "all: every user's tasks (admins only)" })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}

export class ScopeQueryDto {
  @ApiPropertyOptional({ enum: ['own', 'all'], default: 'own' })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}
