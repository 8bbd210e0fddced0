import { Controller, Delete, Get, HttpCode, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { LayerStats, ResultCache } from './result-cache.service';

@ApiTags('cache')
@ApiBearerAuth()
@ApiForbiddenResponse({ description: 'Admins only' })
@UseGuards(AdminGuard)
@Controller('api/v1/media/cache')
export class CacheController {
  constructor(private readonly cache: ResultCache) {}

  @Get('stats')
  @ApiOperation({ summary: 'Hits, misses, evictions and size of each cache layer (memory, Redis, disk)' })
  @ApiOkResponse({ description: '{enabled, layers: {memory, redis, disk}}' })
  async stats(): Promise<{ enabled: boolean; layers: Record<string, LayerStats> }> {
    return { enabled: this.cache.enabled, layers: await this.cache.stats() };
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Empty every layer, in every process' })
  @ApiNoContentResponse()
  async purge(): Promise<void> {
    await this.cache.purge();
  }
}
