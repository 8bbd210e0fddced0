import { isAbsolute, join, relative } from 'node:path';
import type { EmbeddedServicesMode } from '../config/env.schema';
import { locatePostgres, startEmbeddedPostgres } from './embedded-postgres';
import {
  serviceShortfall,
  serviceTitle,
  ServicesMissingError,
  Shortfall,
  shortfallParagraph,
  startFailure,
} from './missing-services';
import { displayAddress, probePostgres, probeRedis } from './probes';
import { RunningService } from './processes';
import { startRedisServer, whyNoRedisServer } from './redis-server';
import { neededServices, planServices, ServiceDecision, ServiceName, ServiceNeed, ServiceUrls } from './service-plan';

export type { ServiceUrls };

export interface ProvideOptions {
  mode: EmbeddedServicesMode;
  /** What the configuration says, and what it says when left alone. */
  urls: ServiceUrls;
  defaults: ServiceUrls;
  /** Names of the variables behind `urls`, for the message (default DATABASE_URL and REDIS_URL). */
  variables?: ServiceUrls;
  /** Servers started here keep their data in `<dataRoot>/postgres` and `<dataRoot>/redis`, their logs beside. */
  dataRoot: string;
  /** False for throwaway data (the test suite). */
  durable: boolean;
  /** Who cannot start, in the message: "The platform", "The test suite". */
  subject: string;
  /** Other shortfalls to name in the same message (the test suite's tools). */
  otherShortfalls?: Shortfall[];
  /** Where the queues live, resolved (see resolveQueueBackend): on Postgres, Redis is not needed. */
  queueBackend?: 'redis' | 'postgres';
}

export interface ProvidedServices {
  /** Where to connect: the configured URLs, or those of the servers started here. */
  urls: ServiceUrls;
  decisions: ServiceDecision[];
  started: RunningService[];
  mode: EmbeddedServicesMode;
  /** Stops what was started here and waits for it. */
  stop(): Promise<void>;
  /** Asks what was started here to stop, without waiting (for `process.on('exit')`). */
  stopNow(): void;
}

/**
 * Makes sure Postgres and Redis (unless the queues live on Postgres) are there: each answers where the configuration points, or is started here (see
 * EMBEDDED_SERVICES), or boot ends with one paragraph naming everything missing (ServicesMissingError).
 */
export async function provideServices(options: ProvideOptions): Promise<ProvidedServices> {
  const needs = neededServices(options);
  const decisions = await planServices({
    mode: options.mode,
    needs,
    probe: (need) => (need.name === 'postgres' ? probePostgres(need.url) : probeRedis(need.url)),
    whyCannotStart,
  });
  const shortfalls = decisions.flatMap((d) => (d.action === 'missing' ? [serviceShortfall(d)] : []));
  shortfalls.push(...(options.otherShortfalls ?? []));
  if (shortfalls.length > 0) throw new ServicesMissingError(shortfallParagraph(options.subject, shortfalls));

  const toStart = decisions.filter((d) => d.action === 'start').map((d) => d.need);
  const results = await Promise.allSettled(toStart.map((need) => start(need, options)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ need: toStart[i], error: r.reason }] : []));
  if (failed.length > 0) {
    await Promise.all(started.filter((s) => !s.adopted).map((s) => s.stop()));
    throw new ServicesMissingError(
      shortfallParagraph(
        options.subject,
        failed.map(({ need, error }) => startFailure(need.name, need.variable, (error as Error).message)),
      ),
    );
  }

  const urls = { ...options.urls };
  for (const service of started) {
    const need = toStart.find((n) => n.name === service.name)!;
    urls[need.name === 'postgres' ? 'databaseUrl' : 'redisUrl'] = withServer(need.url, service.url);
  }
  let stopped: Promise<void> | undefined;
  return {
    urls,
    decisions,
    started,
    mode: options.mode,
    stop: () => (stopped ??= Promise.all(started.map((s) => s.stop())).then(() => undefined)),
    stopNow: () => {
      if (!stopped) started.forEach((s) => s.stopNow());
    },
  };
}

async function whyCannotStart(name: ServiceName): Promise<string | undefined> {
  if (name === 'redis') return whyNoRedisServer();
  const located = await locatePostgres();
  return 'missing' in located ? located.missing : undefined;
}

function start(need: ServiceNeed, options: ProvideOptions): Promise<RunningService> {
  const dataDir = join(options.dataRoot, need.name);
  const logFile = join(options.dataRoot, `${need.name}.log`);
  return need.name === 'postgres'
    ? startEmbeddedPostgres({ dataDir, logFile, durable: options.durable })
    : startRedisServer({ dataDir, logFile, durable: options.durable });
}

/** The configured URL's database (its path) on the server started here, which has no password and no TLS. */
function withServer(configured: string, server: string): string {
  const url = new URL(server);
  const path = new URL(configured).pathname;
  if (path && path !== '/') url.pathname = path;
  return url.toString();
}

/**
 * What boot did about its services, for the start-up line: "started PostgreSQL 18.4 (data in ./data/postgres,
 * 127.0.0.1:40001) because nothing answered at DATABASE_URL's default; using Redis at 127.0.0.1:6379".
 */
export function describeServices(provided: ProvidedServices, cwd = process.cwd()): string {
  const parts: string[] = [];
  for (const decision of provided.decisions) {
    const { need } = decision;
    const service = provided.started.find((s) => s.name === need.name);
    const defaultPort = need.name === 'postgres' ? 5432 : 6379;
    if (!service) {
      parts.push(`using ${serviceTitle(need.name)} at ${displayAddress(need.url, defaultPort)}`);
      continue;
    }
    const why =
      provided.mode === 'always'
        ? 'EMBEDDED_SERVICES=always'
        : `nothing answered at ${displayAddress(need.defaultUrl, defaultPort)}; set ${need.variable} to use your own`;
    const verb = service.adopted ? 'reusing' : 'started';
    parts.push(
      `${verb} ${serviceTitle(need.name)} ${service.version} (data in ${shortPath(service.dataDir, cwd)}, ` +
        `${service.address}; ${why})`,
    );
  }
  return parts.join(', ');
}

function shortPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? `./${rel}` : path;
}
