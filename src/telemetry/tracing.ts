import { context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Telemetry } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';

/** Probes and scrapes: frequent, and no part of any task's story. */
const UNTRACED_PATHS = /^\/(health|metrics)(\/|\?|$)/;

export interface Tracing {
  bullmq: Telemetry;
  jobTraceMetadata(): string;
  shutdown(): Promise<void>;
}

/**
 * The SDK as the platform runs it: spans batched to OTLP over HTTP (OTEL_EXPORTER_OTLP_* and OTEL_BSP_* are read by
 * the exporter and the processor, OTEL_TRACES_SAMPLER by the provider, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
 * by the resource), W3C `traceparent` in and out, and the instrumentations of what carries a task: the HTTP server
 * (Fastify runs on node:http), undici and fetch (provider calls, webhooks), pg and ioredis.
 */
export function startTracing(options: { serviceName: string }): Tracing {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }))
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults above.
    .merge(detectResources({ detectors: [envDetector, hostDetector, processDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // The global tracer provider, AsyncLocalStorage context and the W3C trace-context and baggage propagators.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? '') }),
      new UndiciInstrumentation(),
      // Only inside a trace: BullMQ's and the health checks' own polling would otherwise each start one.
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  const bullmq = new BullMQOtel({ tracerName: 'media-tasks' });
  return {
    bullmq,
    jobTraceMetadata: () => bullmq.contextManager.getMetadata(context.active()),
    shutdown: () => provider.shutdown(),
  };
}
