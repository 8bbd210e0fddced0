import { ApiProperty } from '@nestjs/swagger';
import { ApiKeyScope } from '../api-key-scopes';

/** A key as listed: never the key itself nor its hash. */
export class ApiKeyResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ description: 'The user id the key acts as' })
  owner: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ description: 'The first characters of the key, to tell keys apart', example: 'mt_Xk3v9QaB' })
  prefix: string;
  @ApiProperty({ enum: ApiKeyScope, isArray: true, description: 'What the key may do' })
  scopes: string[];
  @ApiProperty()
  created_at: string;
  @ApiProperty({ nullable: true, type: String, description: 'Recorded at most once a minute' })
  last_used_at: string | null;
  @ApiProperty({ nullable: true, type: String })
  revoked_at: string | null;
}

/** The answer to a create: the only time the key is shown. */
export class ApiKeyCreatedDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty()
  owner: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ description: 'Send as X-API-Key; shown once, store it now', example: 'mt_Xk3v9QaB…' })
  key: string;
  @ApiProperty()
  prefix: string;
  @ApiProperty({ enum: ApiKeyScope, isArray: true })
  scopes: string[];
  @ApiProperty()
  created_at: string;
}
