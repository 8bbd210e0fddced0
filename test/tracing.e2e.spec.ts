import { signToken } from '../src/auth/token';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { CollectedSpan, OtlpCollector } from './support/otlp-collector';
import { PlatformProcess } from './support/platform-process';
import { deleteRedisKeys, freePort, freePortRange, TEST_JWT_SECRET } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const SUBTITLES = '/api/v1/media/subtitles/generate';
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/**
 * Tracing is tested on real processes, not in Jest's: the instrumentations patch http, pg and ioredis as Node's own
 * require loads them, which Jest's module registry bypasses. An API process and a worker process export to a collector
 * on loopback over OTLP/HTTP, exactly as they would to a real one; the collector keeps what it gets.
 */
describe('tracing (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  const redisPrefix = `tracing${process.pid}`;
  let database: { name: string; url: string };
  let collector: OtlpCollector;
  let receiver: WebhookReceiver;
  const processes: PlatformProcess[] = [];
  let apiUrl: string;

  const spawn = async (role: 'api' | 'worker'): Promise<string> => {
    const port = await freePort();
    const child = PlatformProcess.spawn({
      APP_ROLE: role,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      // The providers' emulators, so a task can make an HTTP provider call on loopback: hosted by the first process
      // on ports of this test's own (another test's `npm start` may hold the default ones, then go away).
      PROVIDERS_MODE: 'sandbox',
      SANDBOX_PORT: String(sandboxPort),
      WEBHOOK_SECRET: 'tracing-webhook-secret-0123456789abcdef',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      // Spans go out within 100 ms instead of 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    processes.push(child);
    await child.waitForHttp(`http://127.0.0.1:${port}/health/live`);
    return `http://127.0.0.1:${port}`;
  };

  let sandboxPort: number;

  beforeAll(async () => {
    sandboxPort = await freePortRange(7);
    database = await createTestDatabase();
    collector = await OtlpCollector.start();
    receiver = await WebhookReceiver.start();
    // One after the other: each migrates the database at its boot.
    apiUrl = await spawn('api');
    await spawn('worker');
  }, 120_000);
  afterAll(async () => {
    await Promise.all(processes.map((child) => child.kill()));
    await receiver?.close();
    await collector?.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  const submit = (headers: Record<string, string> = {}, path = SUBTITLES, body?: object) =>
    fetch(`${apiUrl}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${signToken(TEST_JWT_SECRET, { sub: 'alice' })}`,
        'content-type': 'application/json',
        ...headers,
      },
      body: JSON.stringify(body ?? { text: 'Traced from end to end.', webhook_url: `${receiver.url}/hooks` }),
    });

  it('one submit → complete is one trace: request, job, worker, Postgres, Redis, and the webhook with its traceparent', async () => {
    const res = await submit();
    const body = (await res.json()) as { id: string };
    expect([res.status, body]).toEqual([202, expect.objectContaining({ id: expect.any(String) })]);
    const taskId = body.id;
    const [completed] = await receiver
      .waitFor((all) => all.some((r) => r.json?.event_type === 'task.completed' && r.json?.task_id === taskId), 30_000)
      .then((all) => all.filter((r) => r.json?.event_type === 'task.completed'));

    // The receiver was told which trace the delivery belongs to.
    const traceparent = String(completed.headers.traceparent);
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const traceId = traceparent.split('-')[1];

    // Every span hangs from another span of the same trace, up to one root: nothing is cut off. (Spans reach the
    // collector as they end, parents after their children, so the test waits for the tree to close; the worker's
    // span of the job can end after the webhook it sent at commit has been answered, so it is waited for too.)
    const spans = await waitUntil('the spans of the trace, up to the webhook POST', () => collector.trace(traceId), {
      timeoutMs: 15_000,
      until: (found) =>
        found.some((s) => s.spanId === traceparent.split('-')[2]) &&
        found.some(
          (s) => s.kind === CONSUMER && s.service === 'media-tasks-worker' && /^process .*tasks/.test(s.name),
        ) &&
        orphans(found).length === 0,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nspans cut off: ${orphans(collector.trace(traceId)).join('; ')}`);
    });

    // The request's server span is the trace's root, in the API process.
    const roots = spans.filter((s) => !s.parentSpanId);
    expect(roots).toEqual([expect.objectContaining({ kind: SERVER, service: 'media-tasks-api' })]);
    expect(roots[0].attributes['http.request.method'] ?? roots[0].attributes['http.method']).toBe('POST');
    expect(String(roots[0].attributes['url.path'] ?? roots[0].attributes['http.target'])).toContain(SUBTITLES);

    // The task job added by the request, and run by the worker process under it.
    const added = spans.find((s) => s.kind === PRODUCER && s.name.includes('tasks') && s.service === 'media-tasks-api');
    expect(added).toBeDefined();
    const ran = spans.filter((s) => s.kind === CONSUMER && s.service === 'media-tasks-worker');
    expect(ran.map((s) => s.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^process .*tasks/)]));
    expect(
      ancestors(
        spans,
        ran.find((s) => /tasks/.test(s.name))!,
      ),
    ).toContain(added!.spanId);
    // Postgres, and Redis where the queues and shared state live there, inside the trace.
    expect(spans.some((s) => s.kind === CLIENT && dbSystem(s) === 'postgresql')).toBe(true);
    if (TEST_QUEUE_BACKEND === 'redis') {
      expect(spans.some((s) => s.kind === CLIENT && dbSystem(s) === 'redis')).toBe(true);
    }

    // The webhook's outgoing POST, the span the receiver's traceparent names. A delivery is sent at commit by the
    // process that committed its event: the worker, under the task's run, unless the API process was still sending
    // the line of this task and URL it began with task.created (then under the request).
    const taskRun = ran.find((s) => /tasks/.test(s.name))!;
    const post = spans.find((s) => s.spanId === traceparent.split('-')[2])!;
    expect(post).toMatchObject({ kind: CLIENT, service: expect.stringMatching(/^media-tasks-(worker|api)$/) });
    expect(String(post.attributes['url.full'])).toBe(`${receiver.url}/hooks`);
    const chain = ancestors(spans, post).map((id) => spans.find((s) => s.spanId === id)!);
    expect(chain.map((s) => s.spanId)).toContain(
      post.service === 'media-tasks-worker' ? taskRun.spanId : roots[0].spanId,
    );
    expect(chain.at(-1)).toBe(roots[0]);
  }, 60_000);

  it('a provider call is a span of the task run, and the provider continues the trace from its traceparent', async () => {
    const traceId = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    const res = await submit({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, '/api/v1/media/images/generate', {
      prompt: 'a lighthouse at dawn',
      provider: 'openai-images',
    });
    expect(res.status).toBe(202);
    // The emulator answers on node:http (in whichever process holds its port): its server span is the far end.
    const isFarEnd = (s: CollectedSpan) => s.kind === SERVER && s.attributes['url.path'] === '/v1/images/generations';
    const isRun = (s: CollectedSpan) => s.kind === CONSUMER && /^process .*tasks/.test(s.name);
    // The run's span ends (and is sent) after the call's.
    const spans = await waitUntil('the provider call, its far end and the run', () => collector.trace(traceId), {
      timeoutMs: 30_000,
      until: (found) => found.some(isFarEnd) && found.some(isRun),
    });
    const served = spans.find(isFarEnd)!;
    const call = spans.find((s) => s.spanId === served.parentSpanId);
    expect(call).toMatchObject({
      kind: CLIENT,
      scope: '@opentelemetry/instrumentation-undici',
      service: 'media-tasks-worker',
    });
    const run = spans.find(isRun)!;
    expect(ancestors(spans, call!)).toContain(run.spanId);
  }, 60_000);

  it('continues the trace a caller sends in traceparent', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const parent = '0123456789abcdef';
    const res = await submit({ traceparent: `00-${traceId}-${parent}-01` });
    expect(res.status).toBe(202);
    const spans = await waitUntil('the request span', () => collector.trace(traceId), {
      timeoutMs: 15_000,
      until: (found) => found.some((s) => s.kind === SERVER),
    });
    expect(spans.find((s) => s.kind === SERVER)).toMatchObject({ parentSpanId: parent, service: 'media-tasks-api' });
  }, 30_000);
});

/** The span ids above `span`, nearest first. */
function ancestors(spans: CollectedSpan[], span: CollectedSpan): string[] {
  const chain: string[] = [];
  for (let s: CollectedSpan | undefined = span; s?.parentSpanId;) {
    chain.push(s.parentSpanId);
    s = spans.find((x) => x.spanId === s!.parentSpanId);
  }
  return chain;
}

/** The database a client span speaks to, under the current semantic conventions' name or the older one. */
function dbSystem(span: CollectedSpan): unknown {
  return span.attributes['db.system.name'] ?? span.attributes['db.system'];
}

/** The spans whose parent is not (yet) among `spans`. */
function orphans(spans: CollectedSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans
    .filter((s) => s.parentSpanId && !ids.has(s.parentSpanId))
    .map((s) => `${s.service} ${s.name} (parent ${s.parentSpanId})`);
}
