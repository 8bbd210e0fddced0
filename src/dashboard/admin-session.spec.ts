import { AdminSessions, readCookie, sessionCookie } from './admin-session';

describe('AdminSessions', () => {
  const sessions = new AdminSessions('secret-0123456789abcdef0123456789abcdef');
  const now = 1_800_000_000;

  it('accepts what it issued until it expires', () => {
    const value = sessions.issue('ops@example.com', now + 60);
    expect(sessions.verify(value, now)).toBe('ops@example.com');
    expect(sessions.verify(value, now + 60)).toBeUndefined();
  });

  it('refuses a tampered value, another key and garbage', () => {
    const value = sessions.issue('root', now + 60);
    const [v, , exp, mac] = value.split('.');
    expect(sessions.verify(`${v}.${Buffer.from('admin').toString('base64url')}.${exp}.${mac}`, now)).toBeUndefined();
    expect(sessions.verify(`${v}.${value.split('.')[1]}.${Number(exp) + 1000}.${mac}`, now)).toBeUndefined();
    expect(new AdminSessions('another-secret-0123456789abcdef01234').verify(value, now)).toBeUndefined();
    for (const bad of ['', 'v1', 'v1.a.b.c', 'x'.repeat(2000)]) expect(sessions.verify(bad, now)).toBeUndefined();
  });

  it('reads and writes the cookie', () => {
    expect(readCookie('a=1; mt_admin_session=v1.x.y.z; b=2', 'mt_admin_session')).toBe('v1.x.y.z');
    expect(readCookie(undefined, 'mt_admin_session')).toBeUndefined();
    const cookie = sessionCookie('v', 3600, true);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Secure');
    expect(sessionCookie('v', 3600, false)).not.toContain('Secure');
  });
});
