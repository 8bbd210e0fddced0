import { Body, Controller, Get, Inject, Patch } from '@nestjs/common';
import {
  ApiBody,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { IsInt, IsNumber, IsOptional, Max, Min } from 'class-validator';
import { CurrentUser } from '../src/auth/auth.decorators';
import type { AuthUser } from '../src/auth/auth.types';
import { DomainException, ErrorCode } from '../src/common/domain-exception';
import { ApiAdmin, ApiErrors, ApiJsonBodyErrors } from '../src/common/openapi';
import type { Sandbox } from './sandbox';

export const SANDBOX = Symbol('SANDBOX');

export class SandboxKnobsDto {
  @ApiPropertyOptional({ minimum: 0, maximum: 60000, description: 'Added to every emulator answer, ms', example: 200 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(60000)
  latencyMs?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1, description: 'Share of jobs that fail', example: 0.1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  failureRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1, description: 'Share of calls answered 429', example: 0 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  rateLimitRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1, description: 'Share of jobs that never end', example: 0 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  stuckRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 100, description: 'Polls an async job takes to end', example: 2 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  asyncSteps?: number;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 60000,
    description: 'RunPod simulated execution: ms per clip',
    example: 0,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(60000)
  clipMs?: number;
}

export class SandboxProviderCountsDto {
  @ApiProperty({ description: 'Jobs submitted', example: 12 })
  submissions: number;
  @ApiProperty({ description: 'Calls under way', example: 1 })
  in_flight: number;
  @ApiProperty({ example: 3 })
  max_in_flight: number;
  @ApiProperty({ description: 'Accepted and not yet ended: what a concurrency cap limits', example: 2 })
  outstanding: number;
  @ApiProperty({ example: 3 })
  max_outstanding: number;
}

export class SandboxStateDto {
  @ApiProperty({ type: SandboxKnobsDto })
  knobs: SandboxKnobsDto;
  @ApiProperty({
    type: 'object',
    description: 'By emulated vendor',
    additionalProperties: { $ref: '#/components/schemas/SandboxProviderCountsDto' },
    example: { runpod: { submissions: 12, in_flight: 1, max_in_flight: 3, outstanding: 2, max_outstanding: 3 } },
  })
  providers: Record<
    string,
    { submissions: number; in_flight: number; max_in_flight: number; outstanding: number; max_outstanding: number }
  >;
}

/** The sandbox's knobs, live (admins only; present only in PROVIDERS_MODE=sandbox). */
@ApiTags('sandbox')
@ApiAdmin()
@ApiExtraModels(SandboxProviderCountsDto)
@Controller('api/v1/sandbox')
export class SandboxController {
  constructor(@Inject(SANDBOX) private readonly sandbox: Sandbox) {}

  @Get()
  @ApiOperation({ summary: 'Knobs and per-provider counts of the emulators' })
  @ApiOkResponse({ type: SandboxStateDto })
  getSandboxState(@CurrentUser() user: AuthUser): SandboxStateDto {
    this.assertAdmin(user);
    return {
      knobs: { ...this.sandbox.knobs },
      providers: Object.fromEntries(
        Object.entries(this.sandbox.stats).map(([vendor, s]) => [
          vendor,
          {
            submissions: s.submissions,
            in_flight: s.inFlight,
            max_in_flight: s.maxInFlight,
            // Accepted and not yet ended (queued at the provider or running): what a concurrency cap limits.
            outstanding: s.outstanding,
            max_outstanding: s.maxOutstanding,
          },
        ]),
      ),
    };
  }

  @Patch('knobs')
  @ApiOperation({ summary: 'Change latency, failure rate, 429 rate, stuck jobs or async steps of every emulator' })
  @ApiBody({
    type: SandboxKnobsDto,
    examples: {
      flaky: { summary: 'Slow and flaky providers', value: { latencyMs: 500, failureRate: 0.2, rateLimitRate: 0.1 } },
    },
  })
  @ApiOkResponse({ type: SandboxStateDto, description: 'The knobs as they are now' })
  @ApiJsonBodyErrors()
  @ApiErrors([409, 'Another process hosts the emulators: change them there'])
  updateSandboxKnobs(@CurrentUser() user: AuthUser, @Body() dto: SandboxKnobsDto): SandboxStateDto {
    this.assertAdmin(user);
    if (!this.sandbox.hosted) {
      throw new DomainException(ErrorCode.InvalidTransition, 'another process hosts the emulators: change them there');
    }
    Object.assign(this.sandbox.knobs, Object.fromEntries(Object.entries(dto).filter(([, v]) => v !== undefined)));
    return this.getSandboxState(user);
  }

  private assertAdmin(user: AuthUser): void {
    if (!user.isAdmin) throw new DomainException(ErrorCode.Forbidden, 'the sandbox knobs are for admins');
  }
}
