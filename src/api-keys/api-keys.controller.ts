import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyCreateDto } from './dto/api-key-create.dto';
import { ApiKeyCreatedDto, ApiKeyResponseDto } from './dto/api-key-response.dto';

@ApiTags('api-keys')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@ApiForbiddenResponse({ description: 'The token has no admin role' })
@UseGuards(AdminGuard)
@Controller('api/v1/api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @ApiOperation({ summary: 'Create a key acting as `owner` within its `scopes`; the key is in this answer only' })
  @ApiCreatedResponse({ type: ApiKeyCreatedDto })
  @ApiBadRequestResponse({
    description: 'owner (1–200 chars) or name (1–100) missing, empty or too long, an unknown scope, or unknown field',
  })
  create(@Body() dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    return this.apiKeys.create(dto.owner, dto.name, dto.scopes);
  }

  @Get()
  @ApiOperation({ summary: 'Every key, newest first, revoked ones included (never the key or its hash)' })
  @ApiOkResponse({ type: [ApiKeyResponseDto] })
  list(): Promise<ApiKeyResponseDto[]> {
    return this.apiKeys.list();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a key: it stops working at once (other processes within API_KEY_CACHE_TTL_MS)' })
  @ApiNoContentResponse({ description: 'Revoked (or already was)' })
  @ApiNotFoundResponse({ description: 'No such key' })
  revoke(@Param('id') id: string): Promise<void> {
    return this.apiKeys.revoke(id);
  }
}
