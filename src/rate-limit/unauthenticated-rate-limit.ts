import { Injectable, Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RateLimiterRes, RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { LRUCache } from 'lru-cache';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { RateLimiters } from './rate-limiters';

/** Orchestrators' and load balancers' checks are never refused (a refused liveness check restarts the process). */
const EXEMPT = /^(\/api\/v1\/media)?\/health(\/|\?|$)/;

/**
 * RATE_LIMIT_UNAUTHENTICATED_PER_MINUTE per client address: answers refused for want of valid credentials (401) are
 * counted across API processes (in Redis or Postgres, see RateLimiters; in memory while that is away). Once an
 * address reaches the limit, this process refuses its requests that carry no bearer token with 429 and Retry-After,
 * before anything else runs, until the minute is over: a flood of made-up API keys stops reaching Postgres. A bearer
 * token costs no lookup to check, so a client with one behind the same address goes on; health checks are never
 * refused. The address is Fastify's `request.ip`, which follows X-Forwarded-For only through TRUST_PROXY.
 */
@Injectable()
export class UnauthenticatedRateLimit {
  private readonly logger = new Logger('RateLimit');
  private readonly limiter?: RateLimiterStoreAbstract;
  private readonly limit: number;
  /** Addresses this process refuses, until when (ms). */
  private readonly blocked = new LRUCache<string, number>({ max: 100_000 });
  private readonly filter = new HttpExceptionFilter();

  constructor(config: AppConfig, limiters: RateLimiters) {
    this.limit = config.rateLimitUnauthenticatedPerMinute;
    if (this.limit > 0) {
      this.limiter = limiters.perMinute('unauthenticated', this.limit);
    }
  }

  /** Adds the check (onRequest) and the count (onSend) to the server. */
  register(fastify: FastifyInstance): void {
    if (!this.limiter) return;
    fastify.addHook('onRequest', async (request, reply) => this.refuseIfBlocked(request, reply));
    fastify.addHook('onSend', async (request, reply) => this.count(request, reply));
  }

  private refuseIfBlocked(request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    if (EXEMPT.test(request.url) || /^bearer /i.test(request.headers.authorization ?? '')) return undefined;
    const until = this.blocked.get(request.ip);
    if (until === undefined) return undefined;
    const left = until - Date.now();
    if (left <= 0) {
      this.blocked.delete(request.ip);
      return undefined;
    }
    const retryAfter = Math.max(1, Math.ceil(left / 1000));
    const { body } = this.filter.toResponse(
      new DomainException(
        ErrorCode.RateLimited,
        `too many requests from your address were refused for want of valid credentials (the limit is ` +
          `${this.limit} refused requests a minute); retry in ${retryAfter} s`,
        { limit: this.limit, retry_after_seconds: retryAfter },
      ),
    );
    body.request_id = String(request.id);
    return reply.code(429).header('retry-after', String(retryAfter)).send(body);
  }

  private async count(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // 401 only: a 403 went to a client that proved who it is (a key without a scope, a user on an admin route).
    if (reply.statusCode !== 401) return;
    const ip = request.ip;
    if ((this.blocked.get(ip) ?? 0) > Date.now()) return; // already refused here: no need to count on
    let state: RateLimiterRes;
    try {
      state = await this.limiter!.consume(ip);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.logger.warn(`refused request not counted: ${(err as Error).message}`);
        return;
      }
      state = err;
    }
    if (state.remainingPoints <= 0) this.blocked.set(ip, Date.now() + state.msBeforeNext);
  }
}
