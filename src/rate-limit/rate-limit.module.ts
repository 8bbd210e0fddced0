import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { RateLimitGuard } from './rate-limit.guard';

/**
 * Per-user request limits, for the API role. Its guard runs after the authentication guard: global guards run in the
 * order their modules are imported, and AppModule imports AuthModule first.
 */
@Module({ providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }] })
export class RateLimitModule {}
