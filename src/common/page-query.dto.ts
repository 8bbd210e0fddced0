import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';

/** Query of a keyset-paginated list: page size, the opaque cursor of the previous page, and the admins' scope. */
export class PageQueryDto {
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

  @ApiPropertyOptional({
    enum: ['own', 'all'],
    enumName: 'Scope',
    default: 'own',
    description: "all: every user's (admins only)",
  })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}
