import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { CreditsService } from './credits.service';
import { CreditGrantDto } from './dto/credit-grant.dto';
import { CreditBalanceDto, CreditsQueryDto, CreditsResponseDto } from './dto/credit-response.dto';

const USER_ID = { name: 'user_id', description: 'The user (a token’s `sub`, an API key’s owner)' };

@ApiTags('credits')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'Missing, expired or invalid token' })
@Controller('api/v1/credits')
export class CreditsController {
  constructor(private readonly credits: CreditsService) {}

  @Get()
  @ApiOperation({ summary: 'Your balance and ledger (grants, holds, captures, releases), newest first' })
  @ApiOkResponse({ type: CreditsResponseDto })
  @ApiBadRequestResponse({ description: 'limit out of 1–100, or a cursor not of this list' })
  own(@CurrentUser() user: AuthUser, @Query() query: CreditsQueryDto): Promise<CreditsResponseDto> {
    return this.credits.ledger(user.id, query);
  }

  @Get(':user_id')
  @UseGuards(AdminGuard)
  @ApiOperation({ summary: "A user's balance and ledger (admin)" })
  @ApiParam(USER_ID)
  @ApiOkResponse({ type: CreditsResponseDto })
  @ApiBadRequestResponse({ description: 'limit out of 1–100, or a cursor not of this list' })
  @ApiForbiddenResponse({ description: 'The token has no admin role' })
  @ApiNotFoundResponse({ description: 'Nothing was ever granted to this user' })
  ofUser(@Param('user_id') userId: string, @Query() query: CreditsQueryDto): Promise<CreditsResponseDto> {
    return this.credits.ledger(userId, query, { mustExist: true });
  }

  @Post(':user_id/grant')
  @HttpCode(201)
  @UseGuards(AdminGuard)
  @ApiOperation({ summary: "Add credits to a user's balance (admin); the account is made on the first grant" })
  @ApiParam(USER_ID)
  @ApiCreatedResponse({ type: CreditBalanceDto })
  @ApiBadRequestResponse({
    description: 'amount not a whole number of 1–1,000,000,000, reason missing, or unknown field',
  })
  @ApiForbiddenResponse({ description: 'The token has no admin role' })
  grant(@Param('user_id') userId: string, @Body() dto: CreditGrantDto): Promise<CreditBalanceDto> {
    return this.credits.grant(userId, dto.amount, dto.reason);
  }
}
