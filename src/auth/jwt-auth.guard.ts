import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { JwtService } from '@nestjs/jwt';
import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { ApiKeysService } from '../api-keys/api-keys.service';
import { DomainException, ErrorCode } from '../common/domain-exception';
import { ApiKeyScope, DEFAULT_API_KEY_SCOPES, scopesAllow } from '../api-keys/api-key-scopes';
import { API_KEY_SCOPE, IS_PUBLIC } from './auth.decorators';
import { AuthUser, TokenClaims } from './auth.types';
import { SCOPED_TOKEN_RULE, ScopedTokenRule } from './scoped-token';

type AuthRequest = FastifyRequest & { user?: AuthUser };

/**
 * Global guard: every route needs a valid HS256 bearer token unless marked @Public(). Only HS256 is accepted, so
 * `alg: none` and algorithm-confusion tokens fail verification. Routes marked @AcceptsScopedToken() also take a
 * scoped token, as a bearer or as `?token=`; a scoped token opens nothing else. Without an Authorization header, an
 * `X-API-Key` authenticates as the key's owner (never an admin), on the routes its scopes open.
 */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  /**
   * Claims of tokens already verified, by token: a client sends the same token on every request, and its signature
   * check (HMAC, base64 and JSON decoding) was a twentieth of a submit's CPU. A token's verdict cannot change but by
   * expiry, which is checked on every use; only tokens that verified and have an expiry are kept.
   */
  private readonly verified = new LRUCache<string, TokenClaims & { exp: number }>({ max: 10_000 });

  constructor(
    private readonly reflector: Reflector,
    private readonly jwt: JwtService,
    private readonly apiKeys: ApiKeysService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest<AuthRequest>();
    const rule = this.reflector.get<ScopedTokenRule | undefined>(SCOPED_TOKEN_RULE, context.getHandler());
    const header = request.headers.authorization;
    // A bearer token, when sent, is what counts; the key is looked up only without one.
    const apiKey = request.headers['x-api-key'];
    if (!header && apiKey !== undefined) {
      const user = await this.apiKeys.authenticate(apiKey);
      this.checkKeyScope(user, context);
      request.user = user;
      return true;
    }
    const queryToken = rule && !header ? (request.query as Record<string, unknown> | undefined)?.token : undefined;
    if (!header && queryToken === undefined) {
      throw new DomainException(ErrorCode.Unauthorized, 'missing Authorization: Bearer <token> (or X-API-Key) header');
    }
    const token = header ? this.bearerOf(header) : queryToken;
    if (typeof token !== 'string' || !token) throw new DomainException(ErrorCode.Unauthorized, 'invalid token');
    const claims = this.claimsOf(token);
    if (claims.scope !== undefined || !header) this.checkScope(claims, rule, request, !header);
    const roles = Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
    request.user = { id: claims.sub, roles, isAdmin: roles.includes('admin') };
    return true;
  }

  /** The claims of a valid token (signature, algorithm, issuer and audience, expiry, subject); 401 otherwise. */
  private claimsOf(token: string): TokenClaims {
    const known = this.verified.get(token);
    // jsonwebtoken's own rule: expired once the clock reaches `exp`.
    if (known && Math.floor(Date.now() / 1000) < known.exp) return known;
    let claims: TokenClaims;
    try {
      claims = this.jwt.verify<TokenClaims & object>(token, { algorithms: ['HS256'] });
    } catch (err) {
      if (known) this.verified.delete(token);
      throw new DomainException(ErrorCode.Unauthorized, refusal(err as Error));
    }
    // A token that never expires is a credential that can never be taken back.
    if (typeof claims.exp !== 'number') {
      throw new DomainException(ErrorCode.Unauthorized, 'token has no expiry (exp): tokens must expire');
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 200) {
      throw new DomainException(ErrorCode.Unauthorized, 'token has no subject (sub)');
    }
    this.verified.set(token, claims as TokenClaims & { exp: number });
    return claims;
  }

  /** A key opens a route only within its scopes: the one the route names, else `tasks`. 403 names the missing one. */
  private checkKeyScope(user: AuthUser, context: ExecutionContext): void {
    const needed =
      this.reflector.getAllAndOverride<ApiKeyScope | undefined>(API_KEY_SCOPE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? ApiKeyScope.Tasks;
    const held = user.scopes ?? DEFAULT_API_KEY_SCOPES;
    if (!scopesAllow(held, needed)) {
      throw new DomainException(
        ErrorCode.Forbidden,
        `this API key lacks the scope ${needed} (it has ${held.join(', ') || 'none'})`,
        { missing_scope: needed },
      );
    }
  }

  private bearerOf(header: string): string {
    const [scheme, token] = header.split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token) {
      throw new DomainException(ErrorCode.Unauthorized, 'Authorization header must be "Bearer <token>"');
    }
    return token;
  }

  /**
   * A scoped token is good only where its scope is accepted and only for its task; a token in the query string must
   * be such a token, because URLs end up in logs, proxies and browser history.
   */
  private checkScope(claims: TokenClaims, rule: ScopedTokenRule | undefined, request: AuthRequest, inQuery: boolean) {
    if (!rule || claims.scope !== rule.scope) {
      throw new DomainException(
        ErrorCode.Unauthorized,
        inQuery
          ? 'only a scoped token may be passed as ?token=; send other tokens as Authorization: Bearer'
          : 'this token is scoped to one task and cannot be used here',
      );
    }
    const resource = (request.params as Record<string, unknown> | undefined)?.[rule.param];
    if (typeof claims.task !== 'string' || claims.task !== resource) {
      throw new DomainException(ErrorCode.Unauthorized, 'this token is for another task');
    }
  }
}

/** Why jsonwebtoken refused a token, in words for the caller (never the expected issuer or audience). */
function refusal(err: Error): string {
  if (err.name === 'TokenExpiredError') return 'token expired';
  if (err.message.startsWith('jwt issuer invalid')) return 'token issuer (iss) is not the one this platform accepts';
  if (err.message.startsWith('jwt audience invalid')) return 'token audience (aud) is not this platform';
  return 'invalid token';
}
