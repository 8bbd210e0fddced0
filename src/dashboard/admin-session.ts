import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The dashboard's session cookie. Its name is seen by browsers: renaming it logs every admin out, nothing worse. */
export const ADMIN_SESSION_COOKIE = 'mt_admin_session';

/** A session outlives no admin token by design: at most this long, and never past the token's own expiry. */
export const ADMIN_SESSION_TTL_SECONDS = 3600;

export interface AdminSession {
  /** Random, so each sign-in can be ended on its own (see AdminSessionRevocations). */
  id: string;
  subject: string;
  /** Epoch seconds. */
  expiresAt: number;
}

/**
 * Signs and checks dashboard sessions: `v2.<session id>.<base64url subject>.<expiry, epoch seconds>.<HMAC-SHA256>`.
 * The key is derived from JWT_SECRET (one secret to manage) but is not it, so a session value is never a usable API
 * token and the raw JWT never sits in a cookie. A valid signature is not enough: a session ended by logout is
 * remembered as revoked until it would have expired.
 */
export class AdminSessions {
  private readonly key: Buffer;

  constructor(jwtSecret: string) {
    this.key = createHmac('sha256', 'admin-dashboard-session').update(jwtSecret).digest();
  }

  issue(subject: string, expiresAt: number): string {
    const id = randomBytes(16).toString('base64url');
    const payload = `v2.${id}.${Buffer.from(subject, 'utf8').toString('base64url')}.${expiresAt}`;
    return `${payload}.${this.sign(payload)}`;
  }

  /** The session of a validly signed, unexpired value; undefined otherwise (revocation is checked apart). */
  verify(value: string | undefined, now = Math.floor(Date.now() / 1000)): AdminSession | undefined {
    if (!value || value.length > 1024) return undefined;
    const parts = value.split('.');
    if (parts.length !== 5 || parts[0] !== 'v2') return undefined;
    const [, id, subject, expiry, mac] = parts;
    const expected = Buffer.from(this.sign(`v2.${id}.${subject}.${expiry}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (!/^\d{1,12}$/.test(expiry) || Number(expiry) <= now) return undefined;
    return { id, subject: Buffer.from(subject, 'base64url').toString('utf8'), expiresAt: Number(expiry) };
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

/**
 * Why a request that changes something must be refused as cross-origin, or undefined when it may go on. Browsers
 * say where a request comes from (`Sec-Fetch-Site`, `Origin`); a request from another site, or from a page of
 * another origin, is refused even with a valid session, so the cookie's SameSite is not the only defence. Programs
 * that are not browsers send neither header and are not at risk of being driven by another site.
 */
export function crossOriginProblem(
  headers: { origin?: string | string[]; 'sec-fetch-site'?: string | string[] },
  ownOrigins: ReadonlySet<string>,
): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `a request from another site (Sec-Fetch-Site: ${String(site)}) cannot change anything here`;
  }
  const origin = headers.origin;
  if (origin !== undefined && (typeof origin !== 'string' || !ownOrigins.has(origin.toLowerCase()))) {
    return 'a request from another origin cannot change anything here';
  }
  return undefined;
}
