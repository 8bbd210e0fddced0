import { ProxyTracerProvider, trace } from '@opentelemetry/api';

// Records whether the SDK side of telemetry is ever loaded: off, it must not be.
const mockLoaded: string[] = [];
const mockStartTracing = jest.fn((options: { serviceName: string }) => ({
  bullmq: { serviceName: options.serviceName },
  jobTraceMetadata: () => '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
  shutdown: () => Promise.resolve(),
}));
jest.mock('./tracing', () => {
  mockLoaded.push('./tracing');
  return { startTracing: mockStartTracing };
});

type TelemetryModule = typeof import('./telemetry');

/** A fresh copy of the module (it keeps the started SDK in a module variable). */
function freshTelemetry(): TelemetryModule {
  let module: TelemetryModule | undefined;
  jest.isolateModules(() => {
    module = jest.requireActual<TelemetryModule>('./telemetry');
  });
  return module!;
}

describe('telemetry', () => {
  beforeEach(() => {
    mockLoaded.length = 0;
    mockStartTracing.mockClear();
  });

  it('is off by default: no SDK loaded, no tracer provider registered, nothing added to jobs', () => {
    const telemetry = freshTelemetry();
    expect(telemetry.startTelemetry({ APP_ROLE: 'api' })).toBeUndefined();
    expect(mockLoaded).toEqual([]);
    const provider = trace.getTracerProvider();
    expect(provider).toBeInstanceOf(ProxyTracerProvider);
    // The proxy delegates to the no-op provider: spans started anywhere are not recorded.
    expect((provider as ProxyTracerProvider).getDelegate().constructor.name).toBe('NoopTracerProvider');
    expect(trace.getTracer('x').startSpan('y').isRecording()).toBe(false);
    expect(telemetry.queueTelemetry()).toBeUndefined();
    expect(telemetry.jobTraceMetadata()).toBeUndefined();
  });

  it('stays off with OTEL_SDK_DISABLED=true, whatever the endpoint', () => {
    const telemetry = freshTelemetry();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' };
    expect(telemetry.startTelemetry(env)).toBeUndefined();
    expect(mockLoaded).toEqual([]);
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', APP_ROLE: 'api' }, 'media-tasks-api'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', APP_ROLE: 'worker' }, 'media-tasks-worker'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, 'media-tasks'],
  ])('starts with an endpoint set (%j), named by APP_ROLE', (env, serviceName) => {
    const telemetry = freshTelemetry();
    const started = telemetry.startTelemetry(env);
    expect(started).toBeDefined();
    expect(mockStartTracing).toHaveBeenCalledWith({ serviceName });
    // Once per process: a second start hands back the same SDK.
    expect(telemetry.startTelemetry(env)).toBe(started);
    expect(mockStartTracing).toHaveBeenCalledTimes(1);
    expect(telemetry.queueTelemetry()).toBe(started!.bullmq);
    expect(telemetry.jobTraceMetadata()).toContain('traceparent');
  });
});
