import { Body, Controller, Get, Inject, Patch } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsInt, IsNumber, IsOptional, Max, Min } from 'class-validator';
import { CurrentUser } from '../src/auth/auth.decorators';
import type { AuthUser } from '../src/auth/auth.types';
import { DomainException, ErrorCode } from '../src/common/domain-exception';
import type { Sandbox } from './sandbox';

export const SANDBOX = Symbol('SANDBOX');

export class SandboxKnobsDto {
  @ApiPropertyOptional({ minimum: 0, maximum: 60000 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(60000)
  latencyMs?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  failureRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  rateLimitRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(1)
  stuckRate?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 100 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  asyncSteps?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 60000, description: 'RunPod simulated execution: ms per clip' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(60000)
  clipMs?: number;
}

class SandboxStateDto {
  @ApiProperty()
  knobs: SandboxKnobsDto;
  @ApiProperty({ type: 'object', additionalProperties: true })
  providers: Record<
    string,
    { submissions: number; in_flight: number; max_in_flight: number; outstanding: number; max_outstanding: number }
  >;
}

/** The sandbox's knobs, live (admins only; present only in PROVIDERS_MODE=sandbox). */
@ApiTags('sandbox')
@ApiBearerAuth()
@Controller('api/v1/sandbox')
export class SandboxController {
  constructor(@Inject(SANDBOX) private readonly sandbox: Sandbox) {}

  @Get()
  @ApiOperation({ summary: 'Knobs and per-provider counts of the emulators' })
  state(@CurrentUser() user: AuthUser): SandboxStateDto {
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
  update(@CurrentUser() user: AuthUser, @Body() dto: SandboxKnobsDto): SandboxStateDto {
    this.assertAdmin(user);
    if (!this.sandbox.hosted) {
      throw new DomainException(ErrorCode.InvalidTransition, 'another process hosts the emulators: change them there');
    }
    Object.assign(this.sandbox.knobs, Object.fromEntries(Object.entries(dto).filter(([, v]) => v !== undefined)));
    return this.state(user);
  }

  private assertAdmin(user: AuthUser): void {
    if (!user.isAdmin) throw new DomainException(ErrorCode.Forbidden, 'the sandbox knobs are for admins');
  }
}
