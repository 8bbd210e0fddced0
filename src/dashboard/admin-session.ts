import { createHmac, timingSafeEqual } from 'node:crypto';

/** The dashboard's session cookie. Its name is seen by browsers: renaming it logs every admin out, nothing worse. */
export const ADMIN_SESSION_COOKIE = 'mt_admin_session';

/** A session outlives no admin token by design: at most this long, and never past the token's own expiry. */
export const ADMIN_SESSION_TTL_SECONDS = 3600;

/**
 * Signs and checks dashboard sessions: `v1.<base64url subject>.<expiry, epoch seconds>.<HMAC-SHA256>`. The key is
 * derived from JWT_SECRET (one secret to manage) but is not it, so a session value is never a usable API token and
 * the raw JWT never sits in a cookie.
 */
export class AdminSessions {
  private readonly key: Buffer;

  constructor(jwtSecret: string) {
    this.key = createHmac('sha256', 'admin-dashboard-session').update(jwtSecret).digest();
  }

  issue(subject: string, expiresAt: number): string {
    const payload = `v1.${Buffer.from(subject, 'utf8').toString('base64url')}.${expiresAt}`;
    return `${payload}.${this.sign(payload)}`;
  }

  /** The subject of a valid, unexpired session; undefined otherwise. */
  verify(value: string | undefined, now = Math.floor(Date.now() / 1000)): string | undefined {
    if (!value || value.length > 1024) return undefined;
    const parts = value.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return undefined;
    const [, subject, expiry, mac] = parts;
    const expected = Buffer.from(this.sign(`v1.${subject}.${expiry}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (!/^\d{1,12}$/.test(expiry) || Number(expiry) <= now) return undefined;
    return Buffer.from(subject, 'base64url').toString('utf8');
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

/** The value of one cookie from a Cookie header (no dependency on @fastify/cookie for one name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${ADMIN_SESSION_COOKIE}=${value}`,
    'Path=/admin',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
