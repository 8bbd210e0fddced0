import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import type { FastifyRequest } from 'fastify';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { IS_PUBLIC } from './auth.decorators';
import { AuthUser, TokenClaims } from './auth.types';

/**
 * Global guard: every route needs a valid HS256 bearer token unless marked @Public(). Only HS256 is accepted, so
 * `alg: none` and algorithm-confusion tokens fail verification.
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly jwt: JwtService,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>();
    const header = request.headers.authorization;
    if (!header) throw new DomainException(ErrorCode.Unauthorized, 'missing Authorization: Bearer <token> header');
    const [scheme, token] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      throw new DomainException(ErrorCode.Unauthorized, 'Authorization header must be "Bearer <token>"');
    }
    let claims: TokenClaims;
    try {
      claims = this.jwt.verify<TokenClaims & object>(token, { algorithms: ['HS256'] });
    } catch (err) {
      const reason = (err as Error).name === 'TokenExpiredError' ? 'token expired' : 'invalid token';
      throw new DomainException(ErrorCode.Unauthorized, reason);
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 200) {
      throw new DomainException(ErrorCode.Unauthorized, 'token has no subject (sub)');
    }
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
    request.user = { id: claims.sub, roles, isAdmin: roles.includes('admin') };
    return true;
  }
}
