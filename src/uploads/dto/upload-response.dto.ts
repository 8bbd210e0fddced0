import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class UploadResponseDto {
  @ApiProperty({ format: 'uuid', example: '0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10' })
  id: string;

  @ApiProperty({
    description: 'What to put in a media field of a task',
    example: 'upload:0b7d6a1e-8f43-4a4e-9d55-0f7c2a1e9b10',
  })
  url: string;

  @ApiProperty({ description: 'Told from the bytes, not from the name or the part header', example: 'image/png' })
  content_type: string;

  @ApiProperty({ description: 'Bytes', example: 204800 })
  size: number;

  @ApiProperty({
    description: 'Hex SHA-256 of the bytes',
    example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  })
  sha256: string;

  @ApiPropertyOptional({
    type: String,
    description: 'The name the file was sent with (sanitised)',
    nullable: true,
    example: 'photo.png',
  })
  filename: string | null;

  @ApiProperty({
    format: 'date-time',
    description: 'When it stops being usable and is deleted (UPLOAD_TTL after the upload)',
    example: '2026-12-05T10:00:00.000Z',
  })
  expires_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-12-04T10:00:00.000Z' })
  created_at: string;
}
