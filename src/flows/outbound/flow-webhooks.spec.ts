import { webhookSecretProblem } from '../../webhooks/webhook-secret';
import { WebhookDeliveriesRepository } from '../../webhooks/webhook-deliveries.repository';
import { WebhookQueue } from '../../webhooks/webhook-queue.service';
import type { Sql } from '../../database/sql-client';
import {
  deliveryOfFlowEvent,
  deterministicUuid,
  FlowWebhookRun,
  FlowWebhooks,
  flowWebhookProblems,
} from './flow-webhooks';

const AT = new Date('2026-12-04T10:00:00.000Z');
const run: FlowWebhookRun = {
  id: '11111111-1111-4111-8111-111111111111',
  flowId: '22222222-2222-4222-8222-222222222222',
  userId: 'alice',
  version: 4,
  status: 'completed',
};

describe('flow events as webhook deliveries', () => {
  it('makes a delivery of the run, with the contract body and the flow secret', () => {
    const d = deliveryOfFlowEvent(
      'flow.step.completed',
      run,
      { id: run.flowId, webhookUrl: 'https://example.com/h', webhookSecret: 'flow-secret-0123456789' },
      AT,
      { id: 'subs', kind: 'task', status: 'completed', output: { srt: 'x' } },
    );
    expect(d).toMatchObject({
      flowRunId: run.id,
      taskId: null,
      batchId: null,
      userId: 'alice',
      eventType: 'flow.step.completed',
      url: 'https://example.com/h',
      secret: 'flow-secret-0123456789',
      status: 'pending',
      attempts: 0,
      nextAttemptAt: AT,
    });
    expect(JSON.parse(d!.body)).toEqual({
      type: 'flow.step.completed',
      timestamp: '2026-12-04T10:00:00.000Z',
      data: {
        run_id: run.id,
        flow_id: run.flowId,
        version: 4,
        status: 'completed',
        step: { id: 'subs', kind: 'task', status: 'completed', output: { srt: 'x' } },
      },
    });
  });

  it('carries the run error, and no step, on flow.failed; an absent output is null', () => {
    const failed = { ...run, status: 'failed', error: { code: 'http_404', message: 'HTTP 404' } };
    const body = JSON.parse(
      deliveryOfFlowEvent('flow.failed', failed, { id: 'f', webhookUrl: 'https://e.com' }, AT)!.body,
    );
    expect(body.data).toEqual({
      run_id: run.id,
      flow_id: run.flowId,
      version: 4,
      status: 'failed',
      error: { code: 'http_404', message: 'HTTP 404' },
    });
    const step = JSON.parse(
      deliveryOfFlowEvent('flow.step.completed', run, { id: 'f', webhookUrl: 'https://e.com' }, AT, {
        id: 'd',
        kind: 'delay',
        status: 'completed',
      })!.body,
    );
    expect(step.data.step).toEqual({ id: 'd', kind: 'delay', status: 'completed', output: null });
  });

  it('makes none without a URL or when the filter leaves the event out', () => {
    expect(deliveryOfFlowEvent('flow.completed', run, { id: 'f' }, AT)).toBeNull();
    expect(deliveryOfFlowEvent('flow.completed', run, { id: 'f', webhookUrl: null }, AT)).toBeNull();
    const filtered = { id: 'f', webhookUrl: 'https://e.com', webhookEvents: ['flow.failed'] };
    expect(deliveryOfFlowEvent('flow.completed', run, filtered, AT)).toBeNull();
    expect(deliveryOfFlowEvent('flow.failed', run, filtered, AT)).not.toBeNull();
    expect(deliveryOfFlowEvent('flow.cancelled', run, { ...filtered, webhookEvents: null }, AT)).not.toBeNull();
  });

  it('writes on the transaction given, and dispatches only the ids written', async () => {
    const insertForFlowRun = jest.fn().mockResolvedValue(true);
    const dispatch = jest.fn();
    const hooks = new FlowWebhooks(
      { insertForFlowRun } as unknown as WebhookDeliveriesRepository,
      { dispatch } as unknown as WebhookQueue,
    );
    const tx = { rows: jest.fn() } as unknown as Sql;
    const id = await hooks.deliver(tx, run, { id: 'f', webhookUrl: 'https://e.com' }, 'flow.started');
    expect(insertForFlowRun).toHaveBeenCalledWith(expect.objectContaining({ id, eventType: 'flow.started' }), tx);
    expect(await hooks.deliver(tx, run, { id: 'f' }, 'flow.started')).toBeNull();
    expect(insertForFlowRun).toHaveBeenCalledTimes(1);
    hooks.dispatch([id, null, undefined]);
    expect(dispatch.mock.calls).toEqual([[id]]);
  });
});

describe('deterministicUuid', () => {
  it('is a version 5 layout UUID, the same for the same parts, another for others', () => {
    const a = deterministicUuid('flow.notify', 'run', 'step', '');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deterministicUuid('flow.notify', 'run', 'step', '')).toBe(a);
    expect(deterministicUuid('flow.notify', 'run', 'step', a)).not.toBe(a);
    // Parts are kept apart: "ab" + "c" is not "a" + "bc".
    expect(deterministicUuid('ab', 'c')).not.toBe(deterministicUuid('a', 'bc'));
  });
});

describe('flowWebhookProblems', () => {
  const urlProblem = (url: string) => (url.startsWith('https://') ? null : 'must use https');
  it('names each bad field', () => {
    expect(
      flowWebhookProblems(
        { webhook_url: 'https://e.com', webhook_secret: 'a-secret', webhook_events: ['flow.failed'] },
        urlProblem,
        webhookSecretProblem,
      ),
    ).toEqual([]);
    expect(
      flowWebhookProblems(
        { webhook_url: 'ftp://e.com', webhook_secret: 'whsec_x', webhook_events: ['flow.failed', 'task.created'] },
        urlProblem,
        webhookSecretProblem,
      ),
    ).toEqual([
      'webhook_url: must use https',
      'webhook_secret: a whsec_ secret must be standard base64 after the prefix (A-Z, a-z, 0-9, +, /, = padding)',
      'webhook_events[1]: must be one of flow.started, flow.step.completed, flow.completed, flow.failed, flow.cancelled',
    ]);
    expect(
      flowWebhookProblems({ webhook_url: 5, webhook_events: 'flow.failed' }, urlProblem, webhookSecretProblem),
    ).toEqual([
      'webhook_url: must be a URL',
      'webhook_events: must be a list of flow.started, flow.step.completed, flow.completed, flow.failed, flow.cancelled',
    ]);
  });
});
