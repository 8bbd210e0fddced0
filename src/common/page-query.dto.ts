import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';

/** Query of a keyset-paginated list: page size, the opaque cursor of the previous page, and the admins' scope. */
export class PageQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20, example: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number = 20;

  @ApiPropertyOptional({
    description: 'Opaque: the next_cursor of the previous page',
    example: 'eyJ0IjoiMjAyNi0xMi0wNCJ9',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cursor?: string;

  @ApiPropertyOptional({
    enum: ['own', 'all'],
    enumName: 'ListScope',
    default: 'own',
    description: "all: every user's (admins only)",
    example: 'own',
  })
  @IsOptional()
  @IsIn(['own', 'all'])
  scope?: 'own' | 'all' = 'own';
}

/** The `next_cursor` of a page of a keyset-paginated list. */
export const NextCursorProperty = (): PropertyDecorator =>
  ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last page',
    example: null,
  });
