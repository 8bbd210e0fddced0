import { JwtService } from '@nestjs/jwt';

export interface TokenRequest {
  sub: string;
  admin?: boolean;
  ttl?: string;
}

/** Signs a platform token (used by `npm run token` and the tests). */
export function signToken(secret: string, { sub, admin = false, ttl = '24h' }: TokenRequest): string {
  const jwt = new JwtService({ secret, signOptions: { algorithm: 'HS256' } });
  return jwt.sign({ sub, roles: admin ? ['admin'] : [] }, { expiresIn: ttl as unknown as number });
}
