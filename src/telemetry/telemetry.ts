import type { Telemetry } from 'bullmq';
import type { Tracing } from './tracing';

/** The names a process reports under, by APP_ROLE, unless OTEL_SERVICE_NAME says otherwise. */
const SERVICE_NAMES: Record<string, string> = {
  api: 'media-tasks-api',
  worker: 'media-tasks-worker',
  all: 'media-tasks',
};

let running: Tracing | undefined;

/**
 * Tracing is on only where OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only form) is set and OTEL_SDK_DISABLED is not
 * `true`. It reads the environment itself, not AppConfig: it must start before the modules it instruments (http, pg,
 * ioredis, undici) are first required, which is before the configuration is validated.
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  return !!endpoint && env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true';
}

export function defaultServiceName(env: NodeJS.ProcessEnv): string {
  return SERVICE_NAMES[env.APP_ROLE ?? 'all'] ?? SERVICE_NAMES.all;
}

/**
 * Starts the OpenTelemetry SDK and its instrumentations when tracing is wanted, else does nothing at all: the SDK
 * and the instrumentations are required only here, so a process without an endpoint never loads them.
 */
export function startTelemetry(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  if (running || !tracingWanted(env)) return running;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when tracing is on
  const { startTracing } = require('./tracing') as typeof import('./tracing');
  running = startTracing({ serviceName: defaultServiceName(env) });
  return running;
}

/** BullMQ's telemetry for a Queue or a Worker: carries the trace from the add to the worker, through the job. */
export function queueTelemetry(): Telemetry | undefined {
  return running?.bullmq;
}

/**
 * The trace a job added later (after a batching step, off the caller's own call) must continue: the caller's context,
 * in BullMQ's own form for `opts.telemetry.metadata`; undefined when tracing is off.
 */
export function jobTraceMetadata(): string | undefined {
  return running?.jobTraceMetadata();
}

/** Sends the spans still buffered; at shutdown. */
export async function stopTelemetry(): Promise<void> {
  await running?.shutdown();
}
