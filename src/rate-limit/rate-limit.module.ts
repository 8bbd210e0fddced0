import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { providerByBackend } from '../common/backend-provider';
import { HeldConnectionLeases } from './held-connection-leases';
import { HeldConnections } from './held-connections.service';
import { PostgresHeldConnectionLeases } from './postgres-held-connection-leases';
import { RedisHeldConnectionLeases } from './redis-held-connection-leases';
import { RateLimitGuard } from './rate-limit.guard';
import { PostgresRateLimiters, RateLimiters, RedisRateLimiters } from './rate-limiters';
import { UnauthenticatedRateLimit } from './unauthenticated-rate-limit';

/**
 * Per-user request limits and caps on held connections, for the API role. Its guard runs after the authentication
 * guard: global guards run in the order their modules are imported, and AppModule imports AuthModule first.
 */
@Global()
@Module({
  providers: [
    providerByBackend(RateLimiters, { redis: RedisRateLimiters, postgres: PostgresRateLimiters }),
    { provide: APP_GUARD, useClass: RateLimitGuard },
    HeldConnections,
    providerByBackend(HeldConnectionLeases, {
      redis: RedisHeldConnectionLeases,
      postgres: PostgresHeldConnectionLeases,
    }),
    UnauthenticatedRateLimit,
  ],
  exports: [HeldConnections, UnauthenticatedRateLimit],
})
export class RateLimitModule {}
