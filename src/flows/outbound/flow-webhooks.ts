import { Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import type { Sql } from '../../database/sql-client';
import { WebhookDeliveryEntity } from '../../webhooks/entities/webhook-delivery.entity';
import { WebhookDeliveriesRepository } from '../../webhooks/webhook-deliveries.repository';
import { WebhookQueue } from '../../webhooks/webhook-queue.service';
import type { FlowStepKind } from '../flow-step.types';

/** The events a flow run sends to its flow's `webhook_url` (CONTRACT.md "Flows"). */
export const FLOW_EVENT_TYPES = [
  'flow.started',
  'flow.step.completed',
  'flow.completed',
  'flow.failed',
  'flow.cancelled',
] as const;
export type FlowEventType = (typeof FLOW_EVENT_TYPES)[number];

/** What an event's delivery needs of the run (the core's run row has these, whatever else it has). */
export interface FlowWebhookRun {
  id: string;
  flowId: string;
  userId: string;
  version: number;
  status: string;
  error?: { code: string; message: string } | null;
}

/** What it needs of the flow: where its events go, which ones, and the secret they are signed with. */
export interface FlowWebhookFlow {
  id: string;
  webhookUrl?: string | null;
  /** Null or absent: every event. */
  webhookEvents?: readonly string[] | null;
  /** Never returned by the API; signs the flow's deliveries (WEBHOOK_SECRET when absent). */
  webhookSecret?: string | null;
}

/** The step an event is about (`flow.step.completed`). */
export interface FlowWebhookStep {
  id: string;
  kind: FlowStepKind;
  status: string;
  output?: unknown;
}

/** The body of a flow event's webhook: `{type, timestamp, data}`. */
export interface FlowEventBody {
  type: FlowEventType;
  timestamp: string;
  data: {
    run_id: string;
    flow_id: string;
    version: number;
    status: string;
    step?: { id: string; kind: FlowStepKind; status: string; output: unknown };
    error?: { code: string; message: string };
  };
}

export function flowEventBody(
  type: FlowEventType,
  run: FlowWebhookRun,
  at: Date,
  step?: FlowWebhookStep,
): FlowEventBody {
  return {
    type,
    timestamp: at.toISOString(),
    data: {
      run_id: run.id,
      flow_id: run.flowId,
      version: run.version,
      status: run.status,
      ...(step ? { step: { id: step.id, kind: step.kind, status: step.status, output: step.output ?? null } } : {}),
      ...(run.error ? { error: { code: run.error.code, message: run.error.message } } : {}),
    },
  };
}

/**
 * The delivery a flow event makes, or null when the flow has no `webhook_url` or its `webhook_events` leave the
 * event out. It stands alone (no task, no batch): the run's id finds it, the flow's secret (kept in the row) signs it.
 */
export function deliveryOfFlowEvent(
  type: FlowEventType,
  run: FlowWebhookRun,
  flow: FlowWebhookFlow,
  at: Date,
  step?: FlowWebhookStep,
): WebhookDeliveryEntity | null {
  if (!flow.webhookUrl) return null;
  if (flow.webhookEvents && !flow.webhookEvents.includes(type)) return null;
  return WebhookDeliveryEntity.create({
    id: randomUUID(),
    flowRunId: run.id,
    userId: run.userId,
    eventType: type,
    sequence: 0, // numbered when written, after the run's earlier deliveries
    url: flow.webhookUrl,
    body: JSON.stringify(flowEventBody(type, run, at, step)),
    secret: flow.webhookSecret ?? null,
    nextAttemptAt: at,
    createdAt: at,
  });
}

/**
 * A UUID (version 5 layout) made from `parts`: the same parts give the same id, so a repeated write of the same
 * delivery is the same row.
 */
export function deterministicUuid(...parts: string[]): string {
  const hash = createHash('sha1').update(parts.join('\u0000')).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Flow events as webhooks, through the task webhooks' machinery (rows, the webhooks queue, signatures, retries,
 * dead letters, per-host limits, the URL guard). `deliver` writes the row inside the caller's transaction, with the
 * run's change that makes the event (an event is never lost between the two); `dispatch` puts the rows written on
 * the queue once that transaction has committed (one that is not is found by the reconciler).
 */
@Injectable()
export class FlowWebhooks {
  constructor(
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly queue: WebhookQueue,
  ) {}

  /** The id of the delivery written, or null when the flow wants no webhook for this event. */
  async deliver(
    tx: Sql,
    run: FlowWebhookRun,
    flow: FlowWebhookFlow,
    type: FlowEventType,
    step?: FlowWebhookStep,
  ): Promise<string | null> {
    const delivery = deliveryOfFlowEvent(type, run, flow, new Date(), step);
    if (!delivery) return null;
    await this.deliveries.insertForFlowRun(delivery, tx);
    return delivery.id;
  }

  /** After the commit: fire and forget (a delivery whose job is not added is sent by the reconciler). */
  dispatch(ids: readonly (string | null | undefined)[]): void {
    for (const id of ids) if (id) this.queue.dispatch(id);
  }
}

/**
 * Problems of a flow's webhook fields, for the definitions' validation, each "<field>: <message>": `webhook_url`
 * through the URL guard's rules (`urlProblem`), `webhook_secret` able to sign, `webhook_events` among the flow events.
 */
export function flowWebhookProblems(
  fields: { webhook_url?: unknown; webhook_secret?: unknown; webhook_events?: unknown },
  urlProblem: (url: string) => string | null,
  secretProblem: (secret: string) => string | null,
): string[] {
  const problems: string[] = [];
  const { webhook_url: url, webhook_secret: secret, webhook_events: events } = fields;
  if (url !== undefined && url !== null) {
    const problem = typeof url === 'string' ? urlProblem(url) : 'must be a URL';
    if (problem) problems.push(`webhook_url: ${problem}`);
  }
  if (secret !== undefined && secret !== null) {
    const problem = typeof secret === 'string' && secret ? secretProblem(secret) : 'must be a non-empty string';
    if (problem) problems.push(`webhook_secret: ${problem}`);
  }
  if (events !== undefined && events !== null) {
    if (!Array.isArray(events)) {
      problems.push(`webhook_events: must be a list of ${FLOW_EVENT_TYPES.join(', ')}`);
    } else {
      events.forEach((event, i) => {
        if (!(FLOW_EVENT_TYPES as readonly unknown[]).includes(event)) {
          problems.push(`webhook_events[${i}]: must be one of ${FLOW_EVENT_TYPES.join(', ')}`);
        }
      });
    }
  }
  return problems;
}
