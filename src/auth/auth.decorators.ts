import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuthUser } from './auth.types';

export const IS_PUBLIC = 'auth:public';

/** Marks a route as reachable without a token (health, docs). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The authenticated caller, set by the JwtAuthGuard. */
export const CurrentUser = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): AuthUser =>
    ctx.switchToHttp().getRequest<FastifyRequest & { user: AuthUser }>().user,
);
