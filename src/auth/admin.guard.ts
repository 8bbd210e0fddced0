import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { ApiKeyScope } from '../api-keys/api-key-scopes';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { API_KEY_SCOPE } from './auth.decorators';
import { AuthUser } from './auth.types';

/**
 * Runs after the global JwtAuthGuard: the caller is known, and must hold the admin role — or, on a route marked
 * @KeyScope(), be an API key with that scope (which the JwtAuthGuard has checked). Nothing else opens it.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const user = context.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>().user;
    if (user?.isAdmin) return true;
    const keyScope = this.reflector.getAllAndOverride<ApiKeyScope | undefined>(API_KEY_SCOPE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (keyScope && user?.scopes) return true;
    throw new DomainException(
      ErrorCode.Forbidden,
      keyScope ? `this endpoint is for admins and API keys with the scope ${keyScope}` : 'this endpoint is for admins',
      keyScope ? { missing_scope: keyScope } : undefined,
    );
  }
}
