import { ApiProperty, PickType } from '@nestjs/swagger';
import { ApiKeyScope } from '../api-key-scopes';

/** A key as listed: never the key itself nor its hash. */
export class ApiKeyResponseDto {
  @ApiProperty({ format: 'uuid', example: '4d2c7e1a-9b3f-4a6d-8e5c-1f2a3b4c5d6e' })
  id: string;
  @ApiProperty({ description: 'The user id the key acts as', example: 'alice' })
  owner: string;
  @ApiProperty({ example: 'video pipeline' })
  name: string;
  @ApiProperty({ description: 'The first characters of the key, to tell keys apart', example: 'mt_Xk3v9QaB' })
  prefix: string;
  @ApiProperty({
    enum: ApiKeyScope,
    enumName: 'ApiKeyScope',
    isArray: true,
    description: 'What the key may do',
    example: [ApiKeyScope.Tasks],
  })
  scopes: string[];
  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;
  @ApiProperty({
    nullable: true,
    type: String,
    format: 'date-time',
    description: 'Recorded at most once a minute',
    example: '2026-12-04T11:00:00.000Z',
  })
  last_used_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'null while it works', example: null })
  revoked_at: string | null;
}

/** The answer to a create: the only time the key is shown. */
export class ApiKeyCreatedDto extends PickType(ApiKeyResponseDto, [
  'id',
  'owner',
  'name',
  'prefix',
  'scopes',
  'created_at',
] as const) {
  @ApiProperty({
    description: 'Send as X-API-Key; shown once, store it now',
    example: 'mt_Xk3v9QaB7pLm2Qw8Rt5Yz1Nc4Hd6Jf0',
  })
  key: string;
}
