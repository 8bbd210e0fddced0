import type { EmbeddedServicesMode } from '../config/env.schema';
import type { Probe } from './probes';

export type ServiceName = 'postgres' | 'redis';

/** One value per service: their URLs, their defaults, or the names of the variables that hold them. */
export interface ServiceUrls {
  databaseUrl: string;
  redisUrl: string;
}

/** A service the platform needs, where the configuration points at it, and where it points when left alone. */
export interface ServiceNeed {
  name: ServiceName;
  /** The variable that points at it, as people set it (`DATABASE_URL`; the test suite's `TEST_PG_URL`). */
  variable: string;
  url: string;
  defaultUrl: string;
}

export type ServiceDecision =
  | { need: ServiceNeed; action: 'use' }
  | { need: ServiceNeed; action: 'start' }
  /** `probe` is absent when nothing was asked (EMBEDDED_SERVICES=always); `cannotStart` says why no fallback. */
  | { need: ServiceNeed; action: 'missing'; probe?: Probe; cannotStart?: string };

export interface PlanInput {
  mode: EmbeddedServicesMode;
  needs: ServiceNeed[];
  probe: (need: ServiceNeed) => Promise<Probe>;
  /** Why this machine cannot start the service itself, or undefined when it can. */
  whyCannotStart: (name: ServiceName) => Promise<string | undefined>;
}

/**
 * The services the platform's processes need. The one place that decides it: with the queues on Postgres
 * (QUEUE_BACKEND=postgres) Redis is neither started nor required.
 */
export function neededServices(options: {
  urls: ServiceUrls;
  defaults: ServiceUrls;
  variables?: ServiceUrls;
  queueBackend?: 'redis' | 'postgres';
}): ServiceNeed[] {
  const { urls, defaults, variables = { databaseUrl: 'DATABASE_URL', redisUrl: 'REDIS_URL' } } = options;
  const needs: ServiceNeed[] = [
    { name: 'postgres', variable: variables.databaseUrl, url: urls.databaseUrl, defaultUrl: defaults.databaseUrl },
  ];
  if (options.queueBackend !== 'postgres') {
    needs.push({ name: 'redis', variable: variables.redisUrl, url: urls.redisUrl, defaultUrl: defaults.redisUrl });
  }
  return needs;
}

/**
 * QUEUE_BACKEND=auto made concrete, before anything is started: Redis when REDIS_URL is set (a deployment that names
 * a Redis means it, and is told when it is missing) or when one answers at the default address; Postgres otherwise,
 * so a machine with nothing but Node runs on the embedded Postgres alone.
 */
export async function resolveQueueBackend(options: {
  setting: 'auto' | 'redis' | 'postgres';
  redisUrlSet: boolean;
  redisUrl: string;
  probeRedis: (url: string) => Promise<Probe>;
}): Promise<'redis' | 'postgres'> {
  if (options.setting !== 'auto') return options.setting;
  if (options.redisUrlSet) return 'redis';
  return (await options.probeRedis(options.redisUrl)).state === 'answers' ? 'redis' : 'postgres';
}

/**
 * For each need: use what answers at its URL; start one of our own when the mode is `always`, or when it is `auto`,
 * the URL is the default and nothing answers there; anything else is missing. Every need is decided (in parallel),
 * so one message can name all that is missing.
 */
export function planServices(input: PlanInput): Promise<ServiceDecision[]> {
  return Promise.all(input.needs.map((need) => decide(input, need)));
}

async function decide(input: PlanInput, need: ServiceNeed): Promise<ServiceDecision> {
  if (input.mode === 'always') {
    const cannotStart = await input.whyCannotStart(need.name);
    return cannotStart ? { need, action: 'missing', cannotStart } : { need, action: 'start' };
  }
  const probe = await input.probe(need);
  if (probe.state === 'answers') return { need, action: 'use' };
  if (input.mode === 'auto' && probe.state === 'silent' && sameUrl(need.url, need.defaultUrl)) {
    const cannotStart = await input.whyCannotStart(need.name);
    return cannotStart ? { need, action: 'missing', probe, cannotStart } : { need, action: 'start' };
  }
  return { need, action: 'missing', probe };
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
