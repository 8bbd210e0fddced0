import { ApiProperty } from '@nestjs/swagger';

export class CacheLayerStatsDto {
  @ApiProperty({ description: 'Lookups answered by this layer', example: 42 })
  hits!: number;

  @ApiProperty({ description: 'Lookups this layer could not answer', example: 17 })
  misses!: number;

  @ApiProperty({ description: 'Entries dropped to make room or past their time', example: 0 })
  evictions!: number;

  @ApiProperty({ description: 'Entries held now', example: 12 })
  entries!: number;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Bytes held now (null: Redis does not say)',
    example: 524288,
  })
  bytes!: number | null;
}

export class CacheLayersDto {
  @ApiProperty({ type: CacheLayerStatsDto, description: "This process's memory" })
  memory!: CacheLayerStatsDto;

  @ApiProperty({ type: CacheLayerStatsDto, description: 'Shared by every process' })
  redis!: CacheLayerStatsDto;

  @ApiProperty({ type: CacheLayerStatsDto, description: 'The files of the disk layer' })
  disk!: CacheLayerStatsDto;
}

export class CacheStatsDto {
  @ApiProperty({ description: 'CACHE_ENABLED', example: true })
  enabled!: boolean;

  @ApiProperty({ type: CacheLayersDto })
  layers!: CacheLayersDto;
}
