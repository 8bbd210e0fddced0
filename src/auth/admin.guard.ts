import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { AuthUser } from './auth.types';

/** Runs after the global JwtAuthGuard: the caller is known, and must hold the admin role. */
@Injectable()
export class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const user = context.switchToHttp().getRequest<FastifyRequest & { user?: AuthUser }>().user;
    if (!user?.isAdmin) throw new DomainException(ErrorCode.Forbidden, 'this endpoint is for admins');
    return true;
  }
}
