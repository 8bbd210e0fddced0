import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, Server } from 'node:http';
import { AddressInfo, isIP, Socket } from 'node:net';
import { Dispatcher, request } from 'undici';
import { blockedRange, GuardLookup, UrlGuard, UrlGuardError } from './url-guard';

/** Every notation an attacker may use for an address the platform must not reach, and the reason expected. */
const REFUSED: [url: string, reason: string][] = [
  // scheme
  ['ftp://example.com/a.mp3', 'not ftp:'],
  ['file:///etc/passwd', 'not file:'],
  ['gopher://example.com:70/_GET', 'not gopher:'],
  ['javascript:alert(1)', 'not javascript:'],
  ['data:text/plain,hello', 'not data:'],
  ['ws://example.com/socket', 'not ws:'],
  // not a URL at all, IPv6 zone ids included (WHATWG refuses them)
  ['example.com/a.mp3', 'not a valid URL'],
  ['http://[fe80::1%25eth0]/a.mp3', 'not a valid URL'],
  ['http://[::1%25lo]/a.mp3', 'not a valid URL'],
  // credentials
  ['http://user:pass@example.com/a.mp3', 'credentials'],
  ['http://user@example.com/a.mp3', 'credentials'],
  ['http://:secret@example.com/a.mp3', 'credentials'],
  ['http://localhost:80@example.com/a.mp3', 'credentials'],
  // IPv4 loopback in every notation
  ['http://127.0.0.1/a.mp3', 'loopback address (127.0.0.1)'],
  ['http://127.255.255.254/a.mp3', 'loopback'],
  ['http://2130706433/a.mp3', 'loopback address (127.0.0.1)'], // decimal
  ['http://0177.0.0.1/a.mp3', 'loopback address (127.0.0.1)'], // octal
  ['http://017700000001/a.mp3', 'loopback address (127.0.0.1)'], // octal, one number
  ['http://0x7f.1/a.mp3', 'loopback address (127.0.0.1)'], // hex, short form
  ['http://0x7f000001/a.mp3', 'loopback address (127.0.0.1)'], // hex, one number
  ['http://0X7F.0.0.1/a.mp3', 'loopback address (127.0.0.1)'], // uppercase hex
  ['http://0x7f.0.01/a.mp3', 'loopback address (127.0.0.1)'], // mixed hex, decimal, octal
  ['http://127.1/a.mp3', 'loopback address (127.0.0.1)'], // short form
  ['http://127.000.000.001/a.mp3', 'loopback address (127.0.0.1)'],
  ['http://127.0.0.1./a.mp3', 'loopback address (127.0.0.1)'], // trailing dot
  ['http://%31%32%37.0.0.1/a.mp3', 'loopback address (127.0.0.1)'], // percent-encoded
  ['http://127\u30020\u30020\u30021/a.mp3', 'loopback address (127.0.0.1)'], // ideographic full stops
  ['HTTP://127.0.0.1:8080/a.mp3', 'loopback'],
  // localhost names, refused without DNS
  ['http://localhost/a.mp3', 'localhost'],
  ['http://LOCALHOST:8080/a.mp3', 'localhost'],
  ['http://localhost./a.mp3', 'localhost'],
  ['http://localhost../a.mp3', 'localhost'],
  ['http://localhost%2e/a.mp3', 'localhost'],
  ['http://api.localhost/a.mp3', 'localhost'],
  ['http://Example.LocalHost./a.mp3', 'localhost'],
  ['http://%6c%6f%63%61%6c%68%6f%73%74/a.mp3', 'localhost'],
  ['http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/a.mp3', 'localhost'], // fullwidth letters
  // private (RFC 1918, IPv6 ULA)
  ['http://10.0.0.5/a.mp3', 'private address (10.0.0.5)'],
  ['http://10.1/a.mp3', 'private address (10.0.0.1)'],
  ['http://167772161/a.mp3', 'private address (10.0.0.1)'],
  ['http://172.16.0.1/a.mp3', 'private'],
  ['http://172.31.255.255/a.mp3', 'private'],
  ['http://192.168.1.10:8080/a.mp3', 'private'],
  ['http://0xc0.0xa8.1.1/a.mp3', 'private address (192.168.1.1)'],
  ['http://[fd00::1]/a.mp3', 'uniqueLocal'],
  ['http://[fc00::1]/a.mp3', 'uniqueLocal'],
  // link-local
  ['http://169.254.169.254/latest/meta-data', 'linkLocal'],
  ['http://2852039166/latest/meta-data', 'linkLocal address (169.254.169.254)'],
  ['http://0xa9.0xfe.0xa9.0xfe/latest/meta-data', 'linkLocal address (169.254.169.254)'],
  ['http://[fe80::1]/a.mp3', 'linkLocal'],
  ['http://[FE80::ABCD]/a.mp3', 'linkLocal address (fe80::abcd)'],
  // carrier-grade NAT
  ['http://100.64.0.1/a.mp3', 'carrierGradeNat'],
  ['http://100.127.255.254/a.mp3', 'carrierGradeNat'],
  // multicast, reserved, broadcast, unspecified
  ['http://224.0.0.1/a.mp3', 'multicast'],
  ['http://239.255.255.250/a.mp3', 'multicast'],
  ['http://[ff02::1]/a.mp3', 'multicast'],
  ['http://240.0.0.1/a.mp3', 'reserved'],
  ['http://255.255.255.255/a.mp3', 'broadcast'],
  ['http://0.0.0.0/a.mp3', 'unspecified'],
  ['http://0/a.mp3', 'unspecified address (0.0.0.0)'],
  ['http://0.1.2.3/a.mp3', 'unspecified'],
  ['http://[::]/a.mp3', 'unspecified'],
  ['http://[0:0:0:0:0:0:0:0]/a.mp3', 'unspecified'],
  // benchmarking, documentation, other special IPv6 ranges
  ['http://198.18.0.1/a.mp3', 'reserved'],
  ['http://198.19.255.255/a.mp3', 'reserved'],
  ['http://[2001:2::1]/a.mp3', 'benchmarking'],
  ['http://192.0.2.1/a.mp3', 'reserved'],
  ['http://198.51.100.7/a.mp3', 'reserved'],
  ['http://203.0.113.9/a.mp3', 'reserved'],
  ['http://[2001:db8::1]/a.mp3', 'reserved'],
  ['http://[fec0::1]/a.mp3', 'deprecatedSiteLocal'],
  ['http://[100::1]/a.mp3', 'discard'],
  // IPv6 loopback
  ['http://[::1]/a.mp3', 'loopback'],
  ['http://[0:0:0:0:0:0:0:1]:8080/a.mp3', 'loopback'],
  // IPv4-mapped IPv6, judged by the IPv4 it carries
  ['http://[::ffff:127.0.0.1]/a.mp3', 'loopback'],
  ['http://[::ffff:7f00:1]/a.mp3', 'loopback'],
  ['http://[0:0:0:0:0:ffff:127.0.0.1]/a.mp3', 'loopback'],
  ['http://[::ffff:169.254.169.254]/latest', 'linkLocal'],
  ['http://[::FFFF:A9FE:A9FE]/latest', 'linkLocal'],
  ['http://[::ffff:10.0.0.1]/a.mp3', 'private'],
  // IPv4-compatible IPv6 (deprecated): refused whatever it carries
  ['http://[::127.0.0.1]/a.mp3', 'ipv4Compatible'],
  ['http://[::10.0.0.1]/a.mp3', 'ipv4Compatible'],
  // transition forms that embed an IPv4: refused outright
  ['http://[64:ff9b::127.0.0.1]/a.mp3', 'rfc6052'], // NAT64
  ['http://[64:ff9b::a9fe:a9fe]/a.mp3', 'rfc6052'],
  ['http://[64:ff9b:1::a00:1]/a.mp3', 'rfc6052'], // local-use NAT64 (RFC 8215)
  ['http://[2002:7f00:1::]/a.mp3', '6to4'],
  ['http://[2002:a9fe:a9fe::1]/a.mp3', '6to4'],
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.mp3', 'teredo'],
  ['http://[::ffff:0:127.0.0.1]/a.mp3', 'rfc6145'], // IPv4-translated
  ['http://[2606:4700::5efe:127.0.0.1]/a.mp3', 'isatap-loopback'],
];

/** Public addresses and names, in the shapes real inputs take. */
const ALLOWED = [
  'https://example.com/a.mp3',
  'https://EXAMPLE.COM./a.mp3',
  'http://93.184.216.34/a.mp3',
  'http://8.8.8.8:8080/path/to/a.mp3?x=1&y=2',
  'http://1.1.1.1/',
  'https://[2606:4700:4700::1111]/dns-query',
  'https://[2001:4860:4860::8888]:8443/a.mp3',
  'http://[::ffff:8.8.8.8]/a.mp3',
  'https://cdn.example.org:443/media/v.mp4?token=abc%20def#t=10',
  'https://user-content.s3.amazonaws.com/uploads/a.png',
  'http://localhost.example.com/a.mp3', // only a name: DNS is judged at connection time
  // just outside the blocked ranges
  'http://100.63.255.255/a.mp3',
  'http://100.128.0.1/a.mp3',
  'http://172.32.0.1/a.mp3',
  'http://198.20.0.1/a.mp3',
  'http://11.0.0.1/a.mp3',
];

describe('UrlGuard.problem (at submit, without DNS)', () => {
  const guard = new UrlGuard(false);

  it.each(REFUSED)('refuses %s (%s)', (url, reason) => {
    const problem = guard.problem(url);
    expect(problem).not.toBeNull();
    expect(problem).toContain(reason);
    expect(() => guard.assert(url)).toThrow(UrlGuardError);
  });

  it.each(ALLOWED)('lets %s through', (url) => {
    expect(guard.problem(url)).toBeNull();
    expect(() => guard.assert(url)).not.toThrow();
  });

  describe('with private addresses allowed', () => {
    const open = new UrlGuard(true);

    it.each([
      'http://127.0.0.1/a.mp3',
      'http://localhost./a.mp3',
      'http://[::1]:8080/a.mp3',
      'http://10.0.0.1/a.mp3',
      'http://[64:ff9b::7f00:1]/a.mp3',
    ])('lifts the address rules for %s', (url) => {
      expect(open.problem(url)).toBeNull();
    });

    it.each([
      ['ftp://127.0.0.1/a.mp3', 'http or https'],
      ['file:///etc/passwd', 'http or https'],
      ['http://user:pw@127.0.0.1/a.mp3', 'credentials'],
      ['http://[fe80::1%25eth0]/a.mp3', 'not a valid URL'],
    ])('keeps the scheme and credential rules for %s', (url, reason) => {
      expect(open.problem(url)).toContain(reason);
    });
  });
});

describe('blockedRange (resolved addresses)', () => {
  it.each([
    ['8.8.8.8', null],
    ['93.184.216.34', null],
    ['2606:4700::1111', null],
    ['::ffff:8.8.8.8', null],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:100.64.0.1', 'carrierGradeNat'],
    ['::7f00:1', 'ipv4Compatible'],
    ['::808:808', 'ipv4Compatible'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['64:ff9b::808:808', 'rfc6052'],
    ['64:ff9b:1::a00:1', 'rfc6052'],
    ['2002:7f00:1::1', '6to4'],
    ['2002:808:808::1', '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
    ['::ffff:0:7f00:1', 'rfc6145'],
    ['2606:4700::5efe:7f00:1', 'isatap-loopback'],
    ['2606:4700::200:5efe:a00:1', 'isatap-private'],
    ['fe80::1%eth0', 'linkLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['example.com', 'not an IP address'],
  ])('%s → %s', (address, range) => {
    expect(blockedRange(address)).toBe(range);
  });
});

/** A DNS server the test controls: names to addresses, every question recorded. */
function fakeDns(answers: (hostname: string, asked: number) => string[]): GuardLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup: GuardLookup = (hostname, _options, callback) => {
    asked.push(hostname);
    const addresses = answers(hostname, asked.length);
    setImmediate(() =>
      callback(
        null,
        addresses.map((address) => ({ address, family: isIP(address) })),
      ),
    );
  };
  return Object.assign(lookup, { asked });
}

describe('UrlGuard.dispatcher (at connection time)', () => {
  let server: Server;
  let port: number;
  let hits = 0;
  const guards: UrlGuard[] = [];
  const make = (...args: ConstructorParameters<typeof UrlGuard>) => {
    const guard = new UrlGuard(...args);
    guards.push(guard);
    return guard;
  };
  const get = async (url: string, dispatcher: Dispatcher) => {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(5000) });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const refusal = async (url: string, dispatcher: Dispatcher): Promise<unknown> =>
    get(url, dispatcher).then(
      () => new Error(`${url} was fetched`),
      (err: unknown) => err,
    );
  const intranet = () => fakeDns((name) => (name === 'intranet.example' ? ['127.0.0.1'] : []));

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits += 1;
      res.end('inside');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  beforeEach(() => {
    hits = 0;
  });
  afterAll(async () => {
    await Promise.all(guards.map((g) => g.close()));
    await new Promise((resolve) => server.close(resolve));
  });

  it('refuses localhost, a name resolving to 127.0.0.1, and loopback literals, before any byte is sent', async () => {
    const dns = intranet();
    const dispatcher = make(false, { lookup: dns }).dispatcher();
    const cases: [string, RegExp][] = [
      [`http://localhost:${port}/`, /points to localhost/],
      [`http://localhost.:${port}/`, /points to localhost/],
      [`http://intranet.example:${port}/`, /intranet\.example resolves to a loopback address \(127\.0\.0\.1\)/],
      [`http://127.0.0.1:${port}/`, /loopback address \(127\.0\.0\.1\)/],
      [`http://2130706433:${port}/`, /loopback address \(127\.0\.0\.1\)/],
      [`http://[::ffff:127.0.0.1]:${port}/`, /loopback address \(::ffff:7f00:1\)/],
    ];
    for (const [url, reason] of cases) {
      const err = await refusal(url, dispatcher);
      expect(err).toBeInstanceOf(UrlGuardError);
      expect((err as Error).message).toMatch(reason);
    }
    expect(dns.asked).toEqual(['intranet.example']); // localhost and literals are judged without DNS
    expect(hits).toBe(0);
  });

  it('refuses a name when any of its addresses is blocked', async () => {
    const dns = fakeDns(() => ['93.184.216.34', '127.0.0.1']);
    const err = await refusal(`http://mixed.example:${port}/`, make(false, { lookup: dns }).dispatcher());
    expect(err).toBeInstanceOf(UrlGuardError);
    expect((err as Error).message).toContain('resolves to a loopback address (127.0.0.1)');
    expect(hits).toBe(0);
  });

  it('fails a name without addresses as not found, not as a refusal', async () => {
    const err = await refusal(
      `http://nowhere.example:${port}/`,
      make(false, { lookup: fakeDns(() => []) }).dispatcher(),
    );
    expect(err).not.toBeInstanceOf(UrlGuardError);
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('reaches the same server when private addresses are allowed', async () => {
    const dispatcher = make(true, { lookup: intranet() }).dispatcher();
    await expect(get(`http://intranet.example:${port}/`, dispatcher)).resolves.toEqual({ status: 200, body: 'inside' });
    await expect(get(`http://127.0.0.1:${port}/`, dispatcher)).resolves.toEqual({ status: 200, body: 'inside' });
    // the real resolver: localhost answers 127.0.0.1 (and maybe ::1, tried too)
    const real = make(true).dispatcher();
    await expect(get(`http://localhost:${port}/`, real)).resolves.toEqual({ status: 200, body: 'inside' });
    expect(hits).toBe(3);
  });

  it('connects to the address it checked: DNS rebinding to 127.0.0.1 after the check does not reach the server', async () => {
    // First answer public, every later one loopback: a guard that resolved once to check and again to connect
    // would ask twice per connection and reach the server.
    const dns = fakeDns((_name, asked) => (asked === 1 ? ['93.184.216.34'] : ['127.0.0.1']));
    const dispatcher = make(false, { lookup: dns }).dispatcher();
    // Where net is about to connect, seen on the socket; stopped there so the test sends nothing to the internet.
    const connectingTo: string[] = [];
    const stopAtLookup = (message: unknown) => {
      const { socket } = message as { socket: Socket };
      socket.once('lookup', (err: Error | null, address: string) => {
        if (err) return;
        connectingTo.push(address);
        socket.destroy(new Error(`stopped before connecting to ${address}`));
      });
    };
    diagnosticsChannel.subscribe('net.client.socket', stopAtLookup);
    try {
      const first = await refusal(`http://rebind.example:${port}/`, dispatcher);
      expect((first as Error).message).toBe('stopped before connecting to 93.184.216.34');
      expect(dns.asked).toEqual(['rebind.example']);
      expect(connectingTo).toEqual(['93.184.216.34']);

      const second = await refusal(`http://rebind.example:${port}/`, dispatcher);
      expect(second).toBeInstanceOf(UrlGuardError);
      expect((second as Error).message).toBe('rebind.example resolves to a loopback address (127.0.0.1)');
      expect(dns.asked).toEqual(['rebind.example', 'rebind.example']);
      expect(connectingTo).toEqual(['93.184.216.34']);
    } finally {
      diagnosticsChannel.unsubscribe('net.client.socket', stopAtLookup);
    }
    expect(hits).toBe(0);
  });
});

describe('UrlGuard options: trusted origins and allowed ports', () => {
  let server: Server;
  let port: number;
  let hits = 0;
  const guards: UrlGuard[] = [];
  const make = (...args: ConstructorParameters<typeof UrlGuard>) => {
    const guard = new UrlGuard(...args);
    guards.push(guard);
    return guard;
  };
  const get = async (url: string, dispatcher: Dispatcher) => {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(5000) });
    return { status: res.statusCode, body: await res.body.text() };
  };

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits += 1;
      res.end('inside');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  beforeEach(() => {
    hits = 0;
  });
  afterAll(async () => {
    await Promise.all(guards.map((g) => g.close()));
    await new Promise((resolve) => server.close(resolve));
  });

  it('lets a trusted origin through whatever its address, and only that origin (scheme, host and port)', async () => {
    const dns = fakeDns((name) => (name === 'provider.internal' ? ['127.0.0.1'] : []));
    const guard = make(false, {
      lookup: dns,
      trustedOrigins: [`http://127.0.0.1:${port}/v1`, `http://PROVIDER.internal.:${port}`],
    });
    expect(guard.problem(`http://127.0.0.1:${port}/outputs/a.mp4?sig=x`)).toBeNull();
    expect(guard.problem(`http://provider.internal:${port}/a.mp4`)).toBeNull();
    expect(guard.problem(`http://127.0.0.1:${port + 1}/a.mp4`)).toContain('loopback');
    expect(guard.problem(`https://127.0.0.1:${port}/a.mp4`)).toContain('loopback');
    expect(guard.problem(`http://127.0.0.2:${port}/a.mp4`)).toContain('loopback');
    expect(guard.problem(`http://localhost:${port}/a.mp4`)).toContain('localhost');
    expect(guard.problem(`ftp://127.0.0.1:${port}/a.mp4`)).toContain('http or https');
    expect(guard.problem(`http://u:p@127.0.0.1:${port}/a.mp4`)).toContain('credentials');

    const dispatcher = guard.dispatcher();
    await expect(get(`http://127.0.0.1:${port}/`, dispatcher)).resolves.toEqual({ status: 200, body: 'inside' });
    await expect(get(`http://provider.internal:${port}/`, dispatcher)).resolves.toEqual({
      status: 200,
      body: 'inside',
    });
    const other = await get(`http://localhost:${port}/`, dispatcher).catch((err: unknown) => err);
    expect(other).toBeInstanceOf(UrlGuardError);
    expect(hits).toBe(2);
  });

  it('refuses a port off the list, at submit and at connection time; no list means any port', async () => {
    const guard = make(true, { allowedPorts: [80, 443] });
    expect(guard.problem('https://example.com/a.mp3')).toBeNull();
    expect(guard.problem('http://example.com/a.mp3')).toBeNull();
    expect(guard.problem('http://example.com:443/a.mp3')).toBeNull();
    expect(guard.problem('https://example.com:8443/a.mp3')).toBe('must use port 80 or 443, not 8443');
    expect(guard.problem(`http://127.0.0.1:${port}/a.mp3`)).toBe(`must use port 80 or 443, not ${port}`);
    const err = await get(`http://127.0.0.1:${port}/`, guard.dispatcher()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UrlGuardError);
    expect((err as Error).message).toBe(`must use port 80 or 443, not ${port}`);
    expect(hits).toBe(0);

    const any = make(true, { allowedPorts: [] });
    expect(any.problem('https://example.com:8443/a.mp3')).toBeNull();
    await expect(get(`http://127.0.0.1:${port}/`, any.dispatcher())).resolves.toEqual({ status: 200, body: 'inside' });
  });
});
