import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBody, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { CurrentUser } from '../auth/auth.decorators';
import type { AuthUser } from '../auth/auth.types';
import { ApiAdmin, ApiAuthenticated, ApiErrors } from '../common/openapi';
import { CreditsService } from './credits.service';
import { CreditGrantDto } from './dto/credit-grant.dto';
import { CreditBalanceDto, CreditsQueryDto, CreditsResponseDto } from './dto/credit-response.dto';

const USER_ID = {
  name: 'user_id',
  description: 'The user (a token’s `sub`, an API key’s owner)',
  schema: { type: 'string', minLength: 1, maxLength: 200 },
  example: 'alice',
} as const;
const BAD_PAGE: [number, string] = [400, 'limit out of 1–100, or a cursor not of this list'];

@ApiTags('credits')
@Controller('api/v1/credits')
export class CreditsController {
  constructor(private readonly credits: CreditsService) {}

  @Get()
  @ApiOperation({ summary: 'Your balance and ledger (grants, holds, captures, releases), newest first' })
  @ApiAuthenticated()
  @ApiOkResponse({ type: CreditsResponseDto })
  @ApiErrors(BAD_PAGE)
  getOwnCredits(@CurrentUser() user: AuthUser, @Query() query: CreditsQueryDto): Promise<CreditsResponseDto> {
    return this.credits.ledger(user.id, query);
  }

  @Get(':user_id')
  @UseGuards(AdminGuard)
  @ApiOperation({ summary: "A user's balance and ledger (admin)" })
  @ApiParam(USER_ID)
  @ApiAdmin()
  @ApiOkResponse({ type: CreditsResponseDto })
  @ApiErrors(BAD_PAGE, [404, 'Nothing was ever granted to this user'])
  getUserCredits(@Param('user_id') userId: string, @Query() query: CreditsQueryDto): Promise<CreditsResponseDto> {
    return this.credits.ledger(userId, query, { mustExist: true });
  }

  @Post(':user_id/grant')
  @HttpCode(201)
  @UseGuards(AdminGuard)
  @ApiOperation({ summary: "Add credits to a user's balance (admin); the account is made on the first grant" })
  @ApiParam(USER_ID)
  @ApiAdmin()
  @ApiBody({
    type: CreditGrantDto,
    examples: { monthly: { summary: 'A monthly allowance', value: { amount: 100, reason: 'monthly plan' } } },
  })
  @ApiCreatedResponse({ type: CreditBalanceDto, description: 'Granted: the new balance' })
  @ApiErrors([400, 'amount not a whole number of 1–1,000,000,000, reason missing, or unknown field'], 413, [
    415,
    'The body is not JSON',
  ])
  grantCredits(@Param('user_id') userId: string, @Body() dto: CreditGrantDto): Promise<CreditBalanceDto> {
    return this.credits.grant(userId, dto.amount, dto.reason);
  }
}
