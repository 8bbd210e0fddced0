import { AdminSessions, crossOriginProblem, readCookie, sessionCookie } from './admin-session';

describe('AdminSessions', () => {
  const sessions = new AdminSessions('secret-0123456789abcdef0123456789abcdef');
  const now = 1_800_000_000;

  it('accepts what it issued until it expires, each sign-in with an id of its own', () => {
    const value = sessions.issue('ops@example.com', now + 60);
    const session = sessions.verify(value, now);
    expect(session).toMatchObject({ subject: 'ops@example.com', expiresAt: now + 60 });
    expect(session!.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(sessions.verify(sessions.issue('ops@example.com', now + 60), now)!.id).not.toBe(session!.id);
    expect(sessions.verify(value, now + 60)).toBeUndefined();
  });

  it('refuses a tampered value, another key and garbage', () => {
    const value = sessions.issue('root', now + 60);
    const [v, id, subject, exp, mac] = value.split('.');
    const admin = Buffer.from('admin').toString('base64url');
    expect(sessions.verify([v, id, admin, exp, mac].join('.'), now)).toBeUndefined();
    expect(sessions.verify([v, id, subject, Number(exp) + 1000, mac].join('.'), now)).toBeUndefined();
    expect(sessions.verify([v, 'another-id-0123456789a', subject, exp, mac].join('.'), now)).toBeUndefined();
    expect(new AdminSessions('another-secret-0123456789abcdef01234').verify(value, now)).toBeUndefined();
    for (const bad of ['', 'v1', 'v2.a.b.c.d', 'v1.x.y.z', 'x'.repeat(2000)]) {
      expect(sessions.verify(bad, now)).toBeUndefined();
    }
  });

  it('reads and writes the cookie', () => {
    expect(readCookie('a=1; mt_admin_session=v2.w.x.y.z; b=2', 'mt_admin_session')).toBe('v2.w.x.y.z');
    expect(readCookie(undefined, 'mt_admin_session')).toBeUndefined();
    const cookie = sessionCookie('v', 3600, true);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Secure');
    expect(sessionCookie('v', 3600, false)).not.toContain('Secure');
  });
});

describe('crossOriginProblem', () => {
  const own = new Set(['https://media.example.com']);

  it('lets same-origin requests and programs that send neither header through', () => {
    expect(crossOriginProblem({}, own)).toBeUndefined();
    expect(crossOriginProblem({ origin: 'https://media.example.com' }, own)).toBeUndefined();
    expect(crossOriginProblem({ origin: 'HTTPS://MEDIA.EXAMPLE.COM' }, own)).toBeUndefined();
    expect(crossOriginProblem({ 'sec-fetch-site': 'same-origin' }, own)).toBeUndefined();
    expect(crossOriginProblem({ 'sec-fetch-site': 'none' }, own)).toBeUndefined();
  });

  it('refuses another site, another origin, an opaque origin, and a repeated header', () => {
    const refused = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example.com' },
      { origin: 'https://media.example.com:8443' },
      { origin: 'http://media.example.com' },
      { origin: 'null' },
      { origin: ['https://media.example.com', 'https://evil.example.com'] },
      { origin: 'https://media.example.com', 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refused) expect(crossOriginProblem(headers, own)).toMatch(/another (site|origin)/);
  });
});
