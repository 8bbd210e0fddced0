import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { SqlClient } from '../src/database/sql-client';
import type { FlowContext } from '../src/flows/expressions';
import type { NotifyStep, StepExecution, StepRun } from '../src/flows/flow-step.types';
import { FlowWebhookFlow, FlowWebhookRun, FlowWebhooks } from '../src/flows/outbound/flow-webhooks';
import { FlowOutboundModule } from '../src/flows/outbound/flow-outbound.module';
import { HttpStepExecutor } from '../src/flows/outbound/http-step.executor';
import { NotifyStepExecutor } from '../src/flows/outbound/notify-step.executor';
import { UrlGuard } from '../src/security/url-guard';
import { WebhookDeliveriesRepository } from '../src/webhooks/webhook-deliveries.repository';
import { WebhookQueue } from '../src/webhooks/webhook-queue.service';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const DEPLOYMENT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const STEP_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const FLOW_SECRET = 'a-flow-secret-of-its-own-0123';

/** The key bytes a receiver derives from a secret (whsec_: base64 after the prefix; else UTF-8). */
function keyOf(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

describe('flow steps that call out: notify, and flow events as webhooks', () => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  let notify: NotifyStepExecutor;
  let flowWebhooks: FlowWebhooks;
  let deliveries: WebhookDeliveriesRepository;

  beforeAll(async () => {
    t = await TestApp.start({
      env: {
        WEBHOOK_SECRET: DEPLOYMENT_SECRET,
        WEBHOOK_RETRY_DELAYS: '50',
        WEBHOOK_MAX_RETRIES: '2',
        WEBHOOK_TIMEOUT_MS: '1000',
      },
      modules: [{ module: FlowOutboundModule }],
    });
    deliveries = t.app.get(WebhookDeliveriesRepository);
    notify = t.app.get(NotifyStepExecutor);
    flowWebhooks = t.app.get(FlowWebhooks);
    expect(t.app.get(HttpStepExecutor).kind).toBe('http');
  });
  beforeEach(async () => {
    receiver = await WebhookReceiver.start();
  });
  afterEach(async () => {
    await receiver.close();
  });
  afterAll(async () => {
    await t.close();
  });

  function notifyRun(step: Partial<NotifyStep>, over: Partial<StepRun<NotifyStep>> = {}): StepRun<NotifyStep> {
    const runId = over.runId ?? randomUUID();
    const context: FlowContext = {
      trigger: { order: { id: 'o-17', total: 42.5 } },
      steps: { subs: { status: 'completed', output: { srt: '1\n00:00:00,000 --> 00:00:01,000\nHi\n' } } },
      run: { id: runId, flow_id: 'f-1', version: 2 },
    };
    return {
      runId,
      flowId: randomUUID(),
      userId: 'alice',
      step: { id: 'tell', kind: 'notify', url: `${receiver.url}/notify`, ...step },
      attempt: 1,
      context,
      signal: new AbortController().signal,
      state: null,
      ...over,
    };
  }

  /** Executes the step as the engine would, again and again while it waits (sooner than it asks: tests are quick). */
  async function runStep(run: StepRun<NotifyStep>): Promise<{ result: StepExecution; visits: number }> {
    let state = run.state;
    let visits = 0;
    const result = await waitUntil(
      'the notify step to finish',
      async () => {
        visits++;
        const r = await notify.execute({ ...run, state });
        if (r.kind === 'wait') {
          expect(r.untilMs).toBeGreaterThan(Date.now() + 1000);
          state = r.state;
        }
        return r;
      },
      { intervalMs: 25, until: (r) => r.kind !== 'wait' },
    );
    return { result, visits };
  }

  it('sends the rendered body once, signed with the step secret both ways, and ends done with the status', async () => {
    const run = notifyRun({
      secret: STEP_SECRET,
      body: { order: '{{ trigger.order.id }}', total: '{{ trigger.order.total }}', srt: '{{ steps.subs.output.srt }}' },
    });
    const first = await notify.execute(run);
    expect(first).toMatchObject({ kind: 'wait', state: { delivery_id: expect.any(String) } });
    const deliveryId = (first as Extract<StepExecution, { kind: 'wait' }>).state.delivery_id as string;

    const { result, visits } = await runStep({ ...run, state: { delivery_id: deliveryId } });
    expect(visits).toBeGreaterThanOrEqual(1);
    expect(result).toEqual({ kind: 'done', output: { delivery_id: deliveryId, status_code: 204 } });

    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0];
    expect(got.path).toBe('/notify');
    expect(got.json).toEqual({ order: 'o-17', total: 42.5, srt: '1\n00:00:00,000 --> 00:00:01,000\nHi\n' });
    expect(got.headers['webhook-id']).toBe(deliveryId);
    expect(got.headers['x-webhook-event']).toBe('flow.notify');
    expect(() => new Webhook(STEP_SECRET).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
    // Not the deployment's secret: the step's own.
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(got.body, got.headers as Record<string, string>)).toThrow();
    expect(got.headers['x-webhook-signature']).toBe(
      `sha256=${createHmac('sha256', keyOf(STEP_SECRET)).update(got.body).digest('hex')}`,
    );

    // The owner sees the delivery, with its run; nobody else does; the secret is never shown.
    const own = await t.request('GET', `/api/v1/media/webhooks/${deliveryId}/status`, { as: 'alice' });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ id: deliveryId, flow_run_id: run.runId, status: 'delivered', task_id: null });
    expect(JSON.stringify(own.body)).not.toContain(STEP_SECRET.slice(6));
    const other = await t.request('GET', `/api/v1/media/webhooks/${deliveryId}/status`, { as: 'bob' });
    expect(other.status).toBe(404);
    expect((await deliveries.listForFlowRun(run.runId, 'alice')).map((d) => d.id)).toEqual([deliveryId]);
    expect(await deliveries.listForFlowRun(run.runId, 'bob')).toEqual([]);
  });

  it('signs with WEBHOOK_SECRET when the step has no secret, and sends a default body', async () => {
    const run = notifyRun({});
    const { result } = await runStep(run);
    expect(result.kind).toBe('done');
    const got = receiver.received[0];
    expect(got.json).toEqual({ run_id: run.runId, flow_id: run.flowId, step_id: 'tell' });
    expect(() => new Webhook(DEPLOYMENT_SECRET).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
  });

  it('retries a 500 and is done once delivered', async () => {
    receiver.answer((_req, n, res) => void res.writeHead(n < 3 ? 500 : 200).end(n < 3 ? 'busy' : 'ok'));
    const { result } = await runStep(notifyRun({ secret: STEP_SECRET }));
    expect(result).toMatchObject({ kind: 'done', output: { status_code: 200 } });
    expect(receiver.received).toHaveLength(3);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
  });

  it('fails for good, notify_failed with the last error, when the delivery is dead', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(503).end('down'));
    const { result } = await runStep(notifyRun({ secret: STEP_SECRET }));
    expect(result).toEqual({
      kind: 'failed',
      code: 'notify_failed',
      message: 'not delivered after 3 attempt(s): HTTP 503',
      retryable: false,
    });
    expect(receiver.received).toHaveLength(3);
  });

  it('sends once when the same visit runs again, and again on a later visit of a loop', async () => {
    const run = notifyRun({ secret: STEP_SECRET });
    // The visit runs twice before its state is kept (a crash between the two): one delivery.
    const a = await notify.execute(run);
    const b = await notify.execute(run);
    expect(a.kind).toBe('wait');
    expect(b).toEqual({ ...a, untilMs: expect.any(Number) });
    const { result } = await runStep(run);
    expect(result.kind).toBe('done');
    // Run again once delivered: done at once, nothing sent.
    expect(await notify.execute(run)).toEqual(result);
    await receiver.waitFor((all) => all.length >= 1);
    expect(receiver.received).toHaveLength(1);
    expect(await deliveries.listForFlowRun(run.runId)).toHaveLength(1);

    // A later visit (the context holds the first visit's output): a delivery of its own.
    const output = (result as { output: { delivery_id: string } }).output;
    const again = await runStep({
      ...run,
      context: { ...run.context, steps: { ...run.context.steps, tell: { status: 'completed', output } } },
    });
    expect(again.result).toMatchObject({ kind: 'done' });
    expect((again.result as { output: { delivery_id: string } }).output.delivery_id).not.toBe(output.delivery_id);
    expect(receiver.received).toHaveLength(2);
  });

  it('sends a dead delivery again when its step is run again (a retried run), with the same webhook-id', async () => {
    receiver.answer((_req, _n, res) => void res.writeHead(500).end());
    const run = notifyRun({ secret: STEP_SECRET });
    expect((await runStep(run)).result).toMatchObject({ kind: 'failed', code: 'notify_failed' });
    receiver.answer((_req, _n, res) => void res.writeHead(200).end());
    const { result } = await runStep(run);
    expect(result).toMatchObject({ kind: 'done', output: { status_code: 200 } });
    expect(receiver.received).toHaveLength(4);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
  });

  it('refuses a URL the guard refuses, and a template that fails, without writing a delivery', async () => {
    const strict = new NotifyStepExecutor(t.config, new UrlGuard(false), deliveries, t.app.get(WebhookQueue));
    const run = notifyRun({ url: 'http://169.254.169.254/latest/meta-data' });
    expect(await strict.execute(run)).toMatchObject({ kind: 'failed', code: 'url_not_allowed', retryable: false });
    const bad = notifyRun({ body: { x: '{{ $error("nope") }}' } });
    expect(await notify.execute(bad)).toMatchObject({ kind: 'failed', code: 'expression_failed', retryable: false });
    expect(await deliveries.listForFlowRun(run.runId)).toEqual([]);
    expect(await deliveries.listForFlowRun(bad.runId)).toEqual([]);
  });

  it('names the problems of a notify step', () => {
    const problems = (step: Partial<NotifyStep>) =>
      new NotifyStepExecutor(t.config, new UrlGuard(false), deliveries, t.app.get(WebhookQueue)).problems({
        id: 'n',
        kind: 'notify',
        ...step,
      } as NotifyStep);
    expect(problems({ url: 'https://example.com/hook', body: { a: '{{ trigger.a }}' } })).toEqual([]);
    expect(problems({})).toEqual(['url: is required (a URL, or a template that renders one)']);
    expect(problems({ url: 'file:///etc/passwd' })).toEqual(['url: must use http or https, not file:']);
    expect(problems({ url: 'http://10.1.2.3/' })[0]).toMatch(/^url: points to a private address/);
    expect(problems({ url: 'https://example.com/{{ ( }}' })[0]).toMatch(/^url: invalid expression/);
    expect(problems({ url: 'https://example.com', body: ['{{ ] }}'] })[0]).toMatch(/^body\[0\]: invalid expression/);
    expect(problems({ url: 'https://example.com', secret: 'whsec_!!' })).toEqual([
      'secret: a whsec_ secret must be standard base64 after the prefix (A-Z, a-z, 0-9, +, /, = padding)',
    ]);
  });

  describe('flow events', () => {
    const sql = () => t.app.get(SqlClient);

    function runOf(status: string, extra: Partial<FlowWebhookRun> = {}): FlowWebhookRun {
      return { id: randomUUID(), flowId: randomUUID(), userId: 'alice', version: 3, status, ...extra };
    }

    it('writes the event in the caller transaction and delivers it after commit, signed with the flow secret', async () => {
      const run = runOf('running');
      const flow: FlowWebhookFlow = { id: run.flowId, webhookUrl: `${receiver.url}/flow`, webhookSecret: FLOW_SECRET };
      const ids = await sql().transaction(async (tx) => [
        await flowWebhooks.deliver(tx, run, flow, 'flow.started'),
        await flowWebhooks.deliver(tx, run, flow, 'flow.step.completed', {
          id: 'subs',
          kind: 'task',
          status: 'completed',
          output: { srt: 'x' },
        }),
      ]);
      expect(ids.every((id) => typeof id === 'string')).toBe(true);
      flowWebhooks.dispatch(ids);
      const got = await receiver.waitFor((all) => all.length === 2);
      const byType = Object.fromEntries(got.map((r) => [r.json.type, r]));
      expect(byType['flow.started'].json).toEqual({
        type: 'flow.started',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: { run_id: run.id, flow_id: run.flowId, version: 3, status: 'running' },
      });
      expect(byType['flow.step.completed'].json.data.step).toEqual({
        id: 'subs',
        kind: 'task',
        status: 'completed',
        output: { srt: 'x' },
      });
      const wh = new Webhook(Buffer.from(FLOW_SECRET).toString('base64'));
      for (const r of got) {
        expect(r.headers['x-webhook-event']).toBe(r.json.type);
        expect(() => wh.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
        expect(() => wh.verify(r.body.replace('flow.', 'flows.'), r.headers as Record<string, string>)).toThrow();
      }
      const rows = await deliveries.listForFlowRun(run.id, 'alice');
      expect(rows.map((d) => d.flowRunId)).toEqual([run.id, run.id]);
    });

    it("sends a run's deliveries to one URL in the order they were written, whichever job runs first", async () => {
      const run = runOf('completed');
      const flow: FlowWebhookFlow = { id: run.flowId, webhookUrl: `${receiver.url}/flow` };
      receiver.answer((_req, _n, res) => void setTimeout(() => res.writeHead(200).end(), 30));
      const types = ['flow.started', 'flow.step.completed', 'flow.completed'] as const;
      const ids: (string | null)[] = [];
      for (const type of types) {
        const step =
          type === 'flow.step.completed' ? ({ id: 's', kind: 'delay', status: 'completed' } as const) : undefined;
        ids.push(await sql().transaction((tx) => flowWebhooks.deliver(tx, run, flow, type, step)));
      }
      flowWebhooks.dispatch([...ids].reverse());
      const got = await receiver.waitFor((all) => all.length === 3);
      expect(got.map((r) => r.json.type)).toEqual(types);
      expect((await deliveries.listForFlowRun(run.id)).map((d) => [d.eventType, d.sequence])).toEqual([
        ['flow.started', 1],
        ['flow.step.completed', 2],
        ['flow.completed', 3],
      ]);
    });

    it('carries the error of a failed run, and keeps to the flow event filter', async () => {
      const run = runOf('failed', { error: { code: 'notify_failed', message: 'HTTP 500' } });
      const flow: FlowWebhookFlow = {
        id: run.flowId,
        webhookUrl: `${receiver.url}/flow`,
        webhookEvents: ['flow.failed'],
      };
      const ids = await sql().transaction(async (tx) => [
        await flowWebhooks.deliver(tx, run, flow, 'flow.step.completed', { id: 's', kind: 'http', status: 'failed' }),
        await flowWebhooks.deliver(tx, run, flow, 'flow.failed'),
      ]);
      expect(ids[0]).toBeNull();
      flowWebhooks.dispatch(ids);
      const [got] = await receiver.waitFor((all) => all.length === 1);
      expect(got.json).toMatchObject({
        type: 'flow.failed',
        data: { status: 'failed', error: { code: 'notify_failed', message: 'HTTP 500' } },
      });
      // No secret of its own: the deployment's.
      expect(() =>
        new Webhook(DEPLOYMENT_SECRET).verify(got.body, got.headers as Record<string, string>),
      ).not.toThrow();
    });

    it('writes nothing without a webhook_url, or when the transaction rolls back', async () => {
      const run = runOf('completed');
      expect(
        await sql().transaction((tx) => flowWebhooks.deliver(tx, run, { id: run.flowId }, 'flow.completed')),
      ).toBeNull();
      const flow: FlowWebhookFlow = { id: run.flowId, webhookUrl: `${receiver.url}/flow` };
      await expect(
        sql().transaction(async (tx) => {
          await flowWebhooks.deliver(tx, run, flow, 'flow.completed');
          throw new Error('the run transition failed');
        }),
      ).rejects.toThrow('the run transition failed');
      expect(await deliveries.listForFlowRun(run.id)).toEqual([]);
    });
  });
});
