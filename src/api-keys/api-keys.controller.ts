import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { ApiAdmin, ApiErrors } from '../common/openapi';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyCreateDto } from './dto/api-key-create.dto';
import { ApiKeyCreatedDto, ApiKeyResponseDto } from './dto/api-key-response.dto';

@ApiTags('api-keys')
@ApiAdmin()
@UseGuards(AdminGuard)
@Controller('api/v1/api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @ApiOperation({ summary: 'Create a key acting as `owner` within its `scopes`; the key is in this answer only' })
  @ApiBody({
    type: ApiKeyCreateDto,
    examples: {
      tasks: { summary: 'A key for tasks (the default scope)', value: { owner: 'alice', name: 'video pipeline' } },
      monitoring: {
        summary: 'A key that reads the queue statistics only',
        value: { owner: 'ops', name: 'dashboard', scopes: ['queue:read'] },
      },
    },
  })
  @ApiCreatedResponse({ type: ApiKeyCreatedDto, description: 'Created: the key, shown this once' })
  @ApiErrors(
    [400, 'owner (1–200 chars) or name (1–100) missing, empty or too long, an unknown scope, or unknown field'],
    413,
    [415, 'The body is not JSON'],
  )
  createApiKey(@Body() dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    return this.apiKeys.create(dto.owner, dto.name, dto.scopes);
  }

  @Get()
  @ApiOperation({ summary: 'Every key, newest first, revoked ones included (never the key or its hash)' })
  @ApiOkResponse({ type: [ApiKeyResponseDto] })
  listApiKeys(): Promise<ApiKeyResponseDto[]> {
    return this.apiKeys.list();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a key: it stops working at once (other processes within API_KEY_CACHE_TTL_MS)' })
  @ApiParam({ name: 'id', description: "The key's id", schema: { type: 'string', format: 'uuid' } })
  @ApiNoContentResponse({ description: 'Revoked (or already was)' })
  @ApiErrors([404, 'No such key'])
  revokeApiKey(@Param('id') id: string): Promise<void> {
    return this.apiKeys.revoke(id);
  }
}
