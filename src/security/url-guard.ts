import { lookup as dnsLookup, LookupAddress, LookupAllOptions } from 'node:dns';
import { isIP, LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector, Dispatcher } from 'undici';

/**
 * Ranges a request made on a user's behalf must never reach (SSRF): ipaddr.js names them; only `unicast` is public.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry. The transition forms ipaddr.js names
 * (`6to4`, `teredo`, `rfc6052` NAT64, `rfc6145`) are refused outright, whatever IPv4 they embed; the two it calls
 * `unicast` although they carry an IPv4 are caught here: IPv4-compatible `::a.b.c.d` (deprecated, refused) and
 * ISATAP interface ids (`…:0:5efe:a.b.c.d`, judged by the IPv4).
 */
export function blockedRange(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ''));
  } catch {
    return 'not an IP address';
  }
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return blockedRange(v6.toIPv4Address().toString());
    const p = v6.parts;
    if (v6.range() === 'unicast' && p.slice(0, 6).every((x) => x === 0)) return 'ipv4Compatible';
    if ((p[4] === 0 || p[4] === 0x200) && p[5] === 0x5efe) {
      const embedded = blockedRange(`${p[6] >> 8}.${p[6] & 0xff}.${p[7] >> 8}.${p[7] & 0xff}`);
      if (embedded) return `isatap-${embedded}`;
    }
  }
  const range = parsed.range();
  return range === 'unicast' ? null : range;
}

export class UrlGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UrlGuardError';
  }
}

/** `dns.lookup` with `all: true`; tests inject their own to play a DNS server (rebinding included). */
export type GuardLookup = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface UrlGuardOptions {
  lookup?: GuardLookup;
  /**
   * Origins reached whatever their address (URLs; only scheme, host and port count): the configured providers' own
   * hosts, for the downloads of their outputs (the sandbox's emulators on loopback, a private endpoint).
   */
  trustedOrigins?: string[];
  /** The only ports a URL may name (its scheme's default when it names none); empty or unset: any port. */
  allowedPorts?: number[];
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** `scheme//host:port` with the default port spelt out, the host lowercased and without brackets or trailing dot. */
function originKey(protocol: string, hostname: string, port: string | number): string {
  const host = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.+$/, '');
  return `${protocol}//${host}:${Number(port) || DEFAULT_PORTS[protocol] || 0}`;
}

/**
 * The one guard for outbound requests made on a user's behalf (media downloads now, webhooks next): http(s) only, no
 * credentials, and no private, loopback, link-local, CGNAT, multicast, reserved or unspecified address — checked on
 * the URL at submit, and again at connection time, on the IP literal or on every address DNS returns, where the
 * checked addresses are the ones connected to (no DNS rebinding between check and connect). WHATWG URL parsing
 * already turns every IPv4 notation (decimal, octal, hex, short forms, percent-encoded) into dotted quads and
 * lowercases names.
 */
export class UrlGuard {
  private agent?: Agent;
  private readonly lookup: GuardLookup;
  private readonly trusted: Set<string>;
  private readonly ports: Set<number>;

  constructor(
    private readonly allowPrivate: boolean,
    options: UrlGuardOptions = {},
  ) {
    this.lookup = options.lookup ?? dnsLookup;
    this.trusted = new Set(
      (options.trustedOrigins ?? []).map((raw) => {
        const url = new URL(raw);
        return originKey(url.protocol, url.hostname, url.port);
      }),
    );
    this.ports = new Set(options.allowedPorts ?? []);
  }

  /** Why `raw` may not be fetched, judged without DNS; null when it may be. */
  problem(raw: string): string | null {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'is not a valid URL';
    }
    return (
      this.schemeProblem(url.protocol) ??
      (url.username || url.password ? 'must not carry credentials' : null) ??
      this.addressProblem(url.protocol, url.hostname, url.port)
    );
  }

  assert(raw: string): void {
    const problem = this.problem(raw);
    if (problem) throw new UrlGuardError(problem);
  }

  /** An undici dispatcher whose connections only go to addresses the guard allows. */
  dispatcher(): Dispatcher {
    this.agent ??= new Agent({ connect: this.connector() });
    return this.agent;
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }

  private schemeProblem(protocol: string): string | null {
    return protocol === 'http:' || protocol === 'https:' ? null : `must use http or https, not ${protocol}`;
  }

  /** The host rules, then the port list, unless the origin is a trusted one. */
  private addressProblem(protocol: string, hostname: string, port: string | number): string | null {
    if (this.isTrusted(protocol, hostname, port)) return null;
    const hostProblem = this.hostProblem(hostname);
    if (hostProblem) return hostProblem;
    const effective = Number(port) || DEFAULT_PORTS[protocol];
    if (this.ports.size > 0 && !this.ports.has(effective)) {
      return `must use port ${[...this.ports].sort((a, b) => a - b).join(' or ')}, not ${effective}`;
    }
    return null;
  }

  private isTrusted(protocol: string, hostname: string, port: string | number): boolean {
    return this.trusted.size > 0 && this.trusted.has(originKey(protocol, hostname, port));
  }

  /** The address rules on a URL's host: IP literals by range, localhost names without DNS. */
  private hostProblem(hostname: string): string | null {
    if (this.allowPrivate) return null;
    // A trailing dot names the same host ("localhost." is localhost); brackets only wrap IPv6.
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname.replace(/\.+$/, '');
    if (isIP(host)) {
      const range = blockedRange(host);
      return range ? `points to a ${range} address (${host})` : null;
    }
    if (host === 'localhost' || host.endsWith('.localhost')) return 'points to localhost';
    return null;
  }

  private connector(): buildConnector.connector {
    /** Resolves with the guard's lookup; `checked` refuses blocked addresses (trusted origins skip that). */
    const lookupWith =
      (checked: boolean): LookupFunction =>
      (hostname, options, callback) => {
        this.lookup(hostname, { ...options, all: true }, (err, addresses) => {
          if (err) return callback(err, '', 0);
          if (addresses.length === 0) {
            return callback(
              Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }),
              '',
              0,
            );
          }
          const blocked = checked && !this.allowPrivate ? addresses.find((a) => blockedRange(a.address)) : undefined;
          if (blocked) {
            const range = blockedRange(blocked.address);
            return callback(
              new UrlGuardError(`${hostname} resolves to a ${range} address (${blocked.address})`),
              '',
              0,
            );
          }
          // Hand back exactly the addresses checked, so the socket connects there and DNS is not asked again.
          if (options.all) return callback(null, addresses);
          return callback(null, addresses[0].address, addresses[0].family);
        });
      };
    const connect = buildConnector({ lookup: lookupWith(true) });
    const connectTrusted = buildConnector({ lookup: lookupWith(false) });
    return (opts, callback) => {
      const schemeProblem = this.schemeProblem(opts.protocol);
      if (!schemeProblem && this.isTrusted(opts.protocol, opts.hostname, opts.port)) {
        return connectTrusted(opts, callback);
      }
      // Node's net skips the lookup hook for IP literals, so they are judged here.
      const problem = schemeProblem ?? this.addressProblem(opts.protocol, opts.hostname, opts.port);
      if (problem) return queueMicrotask(() => callback(new UrlGuardError(problem), null));
      connect(opts, callback);
    };
  }
}

/** The guard of media inputs fetched on a user's behalf (`audio_url`, `image_url`, `url_video`…): also checks MEDIA_ALLOWED_PORTS. */
export class MediaUrlGuard extends UrlGuard {}

/**
 * The guard of provider output downloads: the same address rules, except at the configured providers' own origins
 * (their base URLs, PROVIDER_OUTPUT_ORIGINS), which may be private (the sandbox's emulators on loopback).
 */
export class OutputUrlGuard extends UrlGuard {}
