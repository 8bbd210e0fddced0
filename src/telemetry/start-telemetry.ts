import { startTelemetry } from './telemetry';

/**
 * Imported first by main.ts, so that with tracing on the instrumentations are in place before http, pg, ioredis and
 * undici are first required (imports run in order, before any statement of the importing module).
 */
export const tracing = startTelemetry(process.env);
