import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Queue } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import { AppConfig } from '../config/app-config';
import { WebhookQueue } from './webhook-queue.service';

// With tracing on, a job carries the trace of the call that dispatched it, in BullMQ's own form.
const mockBullmq = new BullMQOtel();
jest.mock('../telemetry/telemetry', () => ({
  jobTraceMetadata: () =>
    mockBullmq.contextManager.getMetadata(jest.requireActual('@opentelemetry/api').context.active()),
}));

describe('WebhookQueue with tracing on', () => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('gives each delivery of a batched add the trace of its own dispatch, not that of the batch', async () => {
    const batches: { data: { deliveryId: string }; opts: { telemetry?: { metadata: string } } }[][] = [];
    let release!: () => void;
    const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
    const queue = {
      addBulk: async (jobs: (typeof batches)[number]) => {
        batches.push(jobs);
        // The first add is still in flight while the next deliveries are dispatched: they go together after it.
        if (batches.length === 1) await firstBatchHeld;
        return [];
      },
    } as unknown as Queue;
    const webhooks = new WebhookQueue(queue, AppConfig.fromEnv({}));
    const tracer = trace.getTracer('test');
    const traceIds: Record<string, string> = {};
    for (const deliveryId of ['d1', 'd2', 'd3']) {
      tracer.startActiveSpan(`task ${deliveryId}`, (span) => {
        traceIds[deliveryId] = span.spanContext().traceId;
        webhooks.dispatch(deliveryId);
        span.end();
      });
    }
    release();
    await new Promise((resolve) => setTimeout(resolve, 10));

    expect(batches.map((jobs) => jobs.map((j) => j.data.deliveryId))).toEqual([['d1'], ['d2', 'd3']]);
    for (const job of batches.flat()) {
      const carried = JSON.parse(job.opts.telemetry!.metadata) as { traceparent: string };
      expect([job.data.deliveryId, carried.traceparent.split('-')[1]]).toEqual([
        job.data.deliveryId,
        traceIds[job.data.deliveryId],
      ]);
    }
    expect(new Set(Object.values(traceIds)).size).toBe(3);
  });
});
