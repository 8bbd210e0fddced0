import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class UploadResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({
    description: 'What to put in a media field of a task',
    example: 'upload:0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10',
  })
  url: string;

  @ApiProperty({ description: 'Told from the bytes, not from the name or the part header', example: 'image/png' })
  content_type: string;

  @ApiProperty({ description: 'Bytes' })
  size: number;

  @ApiProperty({ description: 'Hex SHA-256 of the bytes' })
  sha256: string;

  @ApiPropertyOptional({ description: 'The name the file was sent with (sanitised)', nullable: true })
  filename: string | null;

  @ApiProperty({ description: 'When it stops being usable and is deleted (UPLOAD_TTL after the upload)' })
  expires_at: string;

  @ApiProperty()
  created_at: string;
}
