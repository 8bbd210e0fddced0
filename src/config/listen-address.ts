import ipaddr from 'ipaddr.js';
import { AppConfig } from './app-config';

/** Where a process listens, and the one line it prints about it at start-up (when there is something to say). */
export interface ListenAddress {
  host: string;
  notice?: string;
}

const LOOPBACK = '127.0.0.1';

/**
 * HOST, unless JWT_SECRET is the development default: that secret is published (`.env.example`, the sources), so
 * anyone who can reach the port can sign an admin token with it. Then the process listens on loopback only, where
 * `npm run token` and the README's first steps still work, and says why. Setting JWT_SECRET is the way onto a network.
 */
export function listenAddress(config: AppConfig): ListenAddress {
  if (!config.usesDevJwtSecret) return { host: config.host };
  const why =
    'JWT_SECRET is the published development default (anyone who can reach the port could sign an admin token)';
  if (isLoopback(config.host)) {
    return { host: config.host, notice: `${why}: listening on loopback only; set JWT_SECRET to serve on a network` };
  }
  return {
    host: LOOPBACK,
    notice: `${why}: listening on ${LOOPBACK} only, not HOST=${config.host}; set JWT_SECRET to serve on a network`,
  };
}

export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  try {
    return ipaddr.process(host.replace(/^\[|\]$/g, '')).range() === 'loopback';
  } catch {
    return false; // a host name: it may resolve to any interface
  }
}
