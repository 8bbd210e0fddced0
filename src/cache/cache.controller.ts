import { Controller, Delete, Get, HttpCode, UseGuards } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { ApiAdmin } from '../common/openapi';
import { CacheStatsDto } from './dto/cache-stats.dto';
import { ResultCache } from './result-cache.service';

@ApiTags('cache')
@ApiAdmin()
@UseGuards(AdminGuard)
@Controller('api/v1/media/cache')
export class CacheController {
  constructor(private readonly cache: ResultCache) {}

  @Get('stats')
  @ApiOperation({ summary: 'Hits, misses, evictions and size of each cache layer (memory, Redis, disk)' })
  @ApiOkResponse({ type: CacheStatsDto })
  async getCacheStats(): Promise<CacheStatsDto> {
    return { enabled: this.cache.enabled, layers: await this.cache.stats() };
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Empty every layer, in every process' })
  @ApiNoContentResponse({ description: 'Emptied' })
  async purgeCache(): Promise<void> {
    await this.cache.purge();
  }
}
