import { blockedRange, UrlGuard } from './url-guard';

describe('URL guard', () => {
  const guard = new UrlGuard(false);

  it.each([
    ['http://127.0.0.1/a.mp3', 'loopback'],
    ['http://localhost:8080/a.mp3', 'localhost'],
    ['http://2130706433/a.mp3', 'loopback'], // decimal 127.0.0.1
    ['http://0x7f.0.0.1/a.mp3', 'loopback'], // hex
    ['http://0177.0.0.1/a.mp3', 'loopback'], // octal
    ['http://127.1/a.mp3', 'loopback'], // short form
    ['http://10.0.0.5/a.mp3', 'private'],
    ['http://192.168.1.10/a.mp3', 'private'],
    ['http://172.16.0.1/a.mp3', 'private'],
    ['http://169.254.169.254/latest/meta-data', 'linkLocal'],
    ['http://100.64.0.1/a.mp3', 'carrierGradeNat'],
    ['http://0.0.0.0/a.mp3', 'unspecified'],
    ['http://224.0.0.1/a.mp3', 'multicast'],
    ['http://[::1]/a.mp3', 'loopback'],
    ['http://[::ffff:127.0.0.1]/a.mp3', 'loopback'],
    ['http://[fd00::1]/a.mp3', 'uniqueLocal'],
    ['http://[fe80::1]/a.mp3', 'linkLocal'],
    ['ftp://example.com/a.mp3', 'ftp:'],
    ['file:///etc/passwd', 'file:'],
    ['http://user:pass@example.com/a.mp3', 'credentials'],
  ])('refuses %s', (url, reason) => {
    const problem = guard.problem(url);
    expect(problem).not.toBeNull();
    expect(problem).toContain(reason);
  });

  it('lets public addresses and names through, and everything when private addresses are allowed', () => {
    expect(guard.problem('https://example.com/a.mp3')).toBeNull();
    expect(guard.problem('http://93.184.216.34/a.mp3')).toBeNull();
    expect(new UrlGuard(true).problem('http://127.0.0.1/a.mp3')).toBeNull();
    expect(new UrlGuard(true).problem('ftp://127.0.0.1/a.mp3')).toContain('http or https');
  });

  it('classifies resolved addresses, IPv4-mapped IPv6 as the IPv4 they carry', () => {
    expect(blockedRange('8.8.8.8')).toBeNull();
    expect(blockedRange('::ffff:10.1.2.3')).toBe('private');
    expect(blockedRange('2606:4700::1111')).toBeNull();
  });

  it('refuses at connection time a name that resolves to a blocked address', async () => {
    const { request } = await import('undici');
    await expect(
      request('http://localhost:9/x', { dispatcher: guard.dispatcher(), signal: AbortSignal.timeout(2000) }),
    ).rejects.toThrow(/resolves to a loopback address/);
    await guard.close();
  });
});
