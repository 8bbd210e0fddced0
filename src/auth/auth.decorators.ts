import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { ApiKeyScope } from '../api-keys/api-key-scopes';
import { AuthUser } from './auth.types';

export const IS_PUBLIC = 'auth:public';

/** Marks a route as reachable without a token (health, docs). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

export const API_KEY_SCOPE = 'auth:api-key-scope';

/**
 * The scope an API key needs on this route (routes without it need `tasks`). On a route behind the AdminGuard, it also
 * opens the route to keys with that scope, besides admins.
 */
export const KeyScope = (scope: ApiKeyScope) => SetMetadata(API_KEY_SCOPE, scope);

/** The authenticated caller, set by the JwtAuthGuard. */
export const CurrentUser = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): AuthUser =>
    ctx.switchToHttp().getRequest<FastifyRequest & { user: AuthUser }>().user,
);
