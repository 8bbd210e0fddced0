import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, IsString, Length } from 'class-validator';
import { API_KEY_SCOPES, ApiKeyScope } from '../api-key-scopes';

export class ApiKeyCreateDto {
  @ApiProperty({ description: 'The user id the key acts as', minLength: 1, maxLength: 200, example: 'alice' })
  @IsString()
  @Length(1, 200)
  owner: string;

  @ApiProperty({ description: 'A label for the key', minLength: 1, maxLength: 100, example: 'video pipeline' })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiPropertyOptional({
    enum: ApiKeyScope,
    enumName: 'ApiKeyScope',
    isArray: true,
    default: [ApiKeyScope.Tasks],
    example: [ApiKeyScope.Tasks, ApiKeyScope.QueueRead],
    description:
      'What the key may do: tasks (act as the owner on tasks, batches, deliveries), queue:read (queue stats), ' +
      'queue:write (also clean, pause, resume). Never anything else an admin has.',
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(API_KEY_SCOPES.length * 2)
  @IsIn(API_KEY_SCOPES, {
    each: true,
    message: ({ value }) => {
      const unknown = (Array.isArray(value) ? value : [value]).filter((v) => !API_KEY_SCOPES.includes(v as string));
      return `scopes: unknown scope ${unknown.map((v) => JSON.stringify(v)).join(', ')} (known: ${API_KEY_SCOPES.join(', ')})`;
    },
  })
  scopes?: ApiKeyScope[];
}
