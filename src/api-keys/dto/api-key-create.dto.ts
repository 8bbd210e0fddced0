import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class ApiKeyCreateDto {
  @ApiProperty({ description: 'The user id the key acts as', minLength: 1, maxLength: 200, example: 'alice' })
  @IsString()
  @Length(1, 200)
  owner: string;

  @ApiProperty({ description: 'A label for the key', minLength: 1, maxLength: 100, example: 'video pipeline' })
  @IsString()
  @Length(1, 100)
  name: string;
}
