import { JwtService } from '@nestjs/jwt';

export interface TokenRequest {
  sub: string;
  admin?: boolean;
  ttl?: string;
  /** JWT_ISSUER and JWT_AUDIENCE, when the platform is configured with them. */
  issuer?: string;
  audience?: string;
}

/** Signs a platform token (used by `npm run token` and the tests). It always expires: tokens without `exp` are refused. */
export function signToken(secret: string, { sub, admin = false, ttl = '24h', issuer, audience }: TokenRequest): string {
  const jwt = new JwtService({ secret, signOptions: { algorithm: 'HS256' } });
  return jwt.sign(
    { sub, roles: admin ? ['admin'] : [] },
    { expiresIn: ttl as unknown as number, ...issuedFor({ issuer, audience }) },
  );
}

/** The `issuer` and `audience` options of jsonwebtoken, only those that are set (it refuses undefined ones). */
export function issuedFor({ issuer, audience }: { issuer?: string; audience?: string }): {
  issuer?: string;
  audience?: string;
} {
  return { ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}) };
}
