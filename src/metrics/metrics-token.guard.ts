import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';

/**
 * GET /metrics is @Public() to the JWT guard (Prometheus holds no user token); when METRICS_TOKEN is set this guard
 * asks for `Authorization: Bearer <METRICS_TOKEN>` instead.
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(config: AppConfig) {
    const token = config.metricsToken;
    this.expected = token ? digest(token) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // Hashing first gives equal lengths, so the comparison takes the same time whatever the guess.
    if (!match || !timingSafeEqual(digest(match[1]), this.expected)) {
      throw new DomainException(ErrorCode.Unauthorized, 'metrics need Authorization: Bearer <METRICS_TOKEN>');
    }
    return true;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
