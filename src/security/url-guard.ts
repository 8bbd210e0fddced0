import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, Dispatcher } from 'undici';

/**
 * Ranges a request made on a user's behalf must never reach (SSRF): ipaddr.js names them; only `unicast` is public.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export function blockedRange(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ''));
  } catch {
    return 'not an IP address';
  }
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
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

/**
 * The one guard for outbound requests made on a user's behalf (media downloads now, webhooks next): http(s) only, no
 * credentials, and no private, loopback, link-local, CGNAT, multicast, reserved or unspecified address — checked on
 * the URL at submit, and again on every address DNS returns at connection time, where the checked address is the
 * one connected to (no DNS rebinding between check and connect). WHATWG URL parsing already turns every IPv4
 * notation (decimal, octal, hex, short forms) into dotted quads.
 */
export class UrlGuard {
  private agent?: Agent;

  constructor(private readonly allowPrivate: boolean) {}

  /** Why `raw` may not be fetched, judged without DNS; null when it may be. */
  problem(raw: string): string | null {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'is not a valid URL';
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http or https, not ${url.protocol}`;
    if (url.username || url.password) return 'must not carry credentials';
    if (this.allowPrivate) return null;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const range = blockedRange(host);
      return range ? `points to a ${range} address (${host})` : null;
    }
    if (host === 'localhost' || host.endsWith('.localhost')) return 'points to localhost';
    return null;
  }

  assert(raw: string): void {
    const problem = this.problem(raw);
    if (problem) throw new UrlGuardError(problem);
  }

  /** An undici dispatcher whose connections only go to addresses the guard allows. */
  dispatcher(): Dispatcher {
    this.agent ??= new Agent({
      connect: {
        lookup: (hostname, options, callback) => {
          dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
            if (err) return callback(err, '', 0);
            const list = addresses;
            const blocked = this.allowPrivate ? undefined : list.find((a) => blockedRange(a.address));
            if (blocked) {
              const range = blockedRange(blocked.address);
              return callback(new UrlGuardError(`${hostname} resolves to a ${range} address`), '', 0);
            }
            const first = list[0];
            // Hand back exactly the address checked, so the socket connects there.
            if (options.all) return callback(null, list, 0);
            return callback(null, first.address, first.family);
          });
        },
      },
    });
    return this.agent;
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }
}
