import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimiterRes, RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import type { AuthUser } from '../auth/auth.types';
import { AppConfig } from '../config/app-config';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { RateLimiters } from './rate-limiters';

/**
 * RATE_LIMIT_PER_MINUTE per user, across every API process (a fixed one-minute window counted by
 * `rate-limiter-flexible` in Redis or Postgres, see RateLimiters). Every answer carries `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds); over the limit, 429 with `Retry-After`. Users are counted
 * apart, so one at its limit slows no other. While the store is away, each process counts alone in memory (the limit
 * then holds per process) rather than refusing or letting everything through. A guard registered after the authentication guard (it needs the user),
 * not an interceptor: a route with an interceptor answers through RxJS, which every request would pay for. Public
 * routes (health, metrics, docs) have no user and are not counted.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly logger = new Logger('RateLimit');
  private readonly limiter?: RateLimiterStoreAbstract;
  private readonly limit: number;

  constructor(config: AppConfig, limiters: RateLimiters) {
    this.limit = config.rateLimitPerMinute;
    if (this.limit > 0) {
      this.limiter = limiters.perMinute('user', this.limit);
    }
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const user = http.getRequest<FastifyRequest & { user?: AuthUser }>().user;
    if (!this.limiter || !user) return true;
    const reply = http.getResponse<FastifyReply>();
    let state: RateLimiterRes;
    try {
      state = await this.limiter.consume(user.id);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.logger.warn(`rate limit not counted: ${(err as Error).message}`);
        return true;
      }
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      this.headers(reply, err);
      void reply.header('retry-after', String(retryAfter));
      throw new DomainException(
        ErrorCode.RateLimited,
        `rate limit of ${this.limit} requests per minute reached; retry in ${retryAfter} s`,
        { limit: this.limit, retry_after_seconds: retryAfter },
      );
    }
    this.headers(reply, state);
    return true;
  }

  private headers(reply: FastifyReply, state: RateLimiterRes): void {
    void reply
      .header('ratelimit-limit', String(this.limit))
      .header('ratelimit-remaining', String(Math.max(0, state.remainingPoints)))
      .header('ratelimit-reset', String(Math.max(0, Math.ceil(state.msBeforeNext / 1000))));
  }
}
