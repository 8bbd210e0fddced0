import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { UrlGuard } from '../../security/url-guard';
import { WebhookDeliveryEntity } from '../../webhooks/entities/webhook-delivery.entity';
import { WebhookDeliveriesRepository } from '../../webhooks/webhook-deliveries.repository';
import { WebhookQueue } from '../../webhooks/webhook-queue.service';
import { webhookSecretProblem } from '../../webhooks/webhook-secret';
import { renderTemplate, templateProblems } from '../expressions';
import { FlowStepExecutor, NotifyStep, StepExecution, StepRun } from '../flow-step.types';
import { deterministicUuid } from './flow-webhooks';

/** How often a notify step looks at its delivery again while it is being delivered. */
export const NOTIFY_RECHECK_MS = 2000;
/** The event type of a notify step's delivery (its `x-webhook-event` header). */
export const NOTIFY_EVENT_TYPE = 'flow.notify';

/**
 * `notify` steps: a signed POST of the rendered `body` to `url`, sent as a webhook delivery (a row, the webhooks
 * queue, Standard Webhooks signatures with the step's `secret` or WEBHOOK_SECRET, retries with WEBHOOK_RETRY_DELAYS,
 * dead letters, per-host limits, the URL guard). The step holds no worker while the delivery is under way: it waits,
 * looking again every NOTIFY_RECHECK_MS, until the delivery is delivered (done) or dead (failed, `notify_failed`).
 *
 * The delivery's id is made from the run, the step and the delivery of the step's previous visit (a loop's): running
 * the same visit again (a crash, a lost job) finds the same row instead of sending twice.
 */
@Injectable()
export class NotifyStepExecutor extends FlowStepExecutor<NotifyStep> {
  readonly kind = 'notify' as const;
  private readonly logger = new Logger('FlowNotifyStep');

  constructor(
    private readonly config: AppConfig,
    private readonly guard: UrlGuard,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly queue: WebhookQueue,
  ) {
    super();
  }

  problems(step: NotifyStep): string[] {
    const problems: string[] = [];
    if (typeof step.url !== 'string' || !step.url.trim()) {
      problems.push('url: is required (a URL, or a template that renders one)');
    } else if (!step.url.includes('{{')) {
      const problem = this.guard.problem(step.url);
      if (problem) problems.push(`url: ${problem}`);
    } else {
      problems.push(...templateProblems(step.url, 'url'));
    }
    if (step.body !== undefined) problems.push(...templateProblems(step.body, 'body'));
    if (step.secret !== undefined) {
      const problem =
        typeof step.secret === 'string' && step.secret
          ? webhookSecretProblem(step.secret)
          : 'must be a non-empty string';
      if (problem) problems.push(`secret: ${problem}`);
    } else if (!this.config.webhook.secret && this.config.webhook.requireSignature) {
      problems.push('secret: is required: this deployment has no WEBHOOK_SECRET to sign with');
    }
    return problems;
  }

  async execute(run: StepRun<NotifyStep>): Promise<StepExecution> {
    const deliveryId = typeof run.state?.delivery_id === 'string' ? run.state.delivery_id : null;
    if (deliveryId) return this.check(deliveryId);
    return this.send(run);
  }

  /** The first visit: the delivery written (or found, when this visit ran before) and put on its way. */
  private async send(run: StepRun<NotifyStep>): Promise<StepExecution> {
    const { step } = run;
    let url: unknown;
    let body: unknown;
    try {
      url = await renderTemplate(step.url, run.context);
      body =
        step.body === undefined
          ? { run_id: run.runId, flow_id: run.flowId, step_id: step.id }
          : await renderTemplate(step.body, run.context);
    } catch (err) {
      return failed('expression_failed', (err as Error).message);
    }
    if (typeof url !== 'string') return failed('invalid_url', 'url did not render to a URL');
    const problem = this.guard.problem(url);
    if (problem) return failed('url_not_allowed', `url ${problem}`);

    const previous = run.context.steps?.[step.id]?.output as { delivery_id?: unknown } | undefined;
    const id = deterministicUuid(
      'flow.notify',
      run.runId,
      step.id,
      typeof previous?.delivery_id === 'string' ? previous.delivery_id : '',
    );
    const now = new Date();
    const written = await this.deliveries.insertForFlowRun(
      WebhookDeliveryEntity.create({
        id,
        flowRunId: run.runId,
        userId: run.userId,
        eventType: NOTIFY_EVENT_TYPE,
        sequence: 0, // numbered when written
        url,
        body: JSON.stringify(body ?? null),
        secret: step.secret ?? null,
        nextAttemptAt: now,
        createdAt: now,
      }),
    );
    if (written) {
      this.queue.dispatch(id);
    } else {
      // Written by an earlier run of this visit. Delivered: done, not sent twice. Dead: sent again (a run retried
      // after the step failed), as a replay: the same webhook-id, a fresh round of retries.
      const existing = await this.deliveries.find(id);
      if (existing?.status === 'delivered') return this.check(id);
      if (existing?.status === 'dead') {
        const reopened = await this.deliveries.reopen(id);
        if (reopened) await this.queue.addRetry(id, reopened.attempts);
      }
    }
    this.logger.debug({ runId: run.runId, stepId: step.id, deliveryId: id }, 'notify delivery on its way');
    return waitFor(id);
  }

  private async check(deliveryId: string): Promise<StepExecution> {
    const delivery = await this.deliveries.find(deliveryId);
    if (!delivery) return failed('notify_failed', `delivery ${deliveryId} no longer exists`);
    switch (delivery.status) {
      case 'delivered':
        return { kind: 'done', output: { delivery_id: delivery.id, status_code: delivery.lastStatusCode } };
      case 'dead':
        return failed(
          'notify_failed',
          `not delivered after ${delivery.attempts} attempt(s): ${delivery.lastError ?? 'failed'}`,
        );
      case 'pending':
      case 'failed':
        return waitFor(deliveryId);
    }
  }
}

function waitFor(deliveryId: string): StepExecution {
  return { kind: 'wait', untilMs: Date.now() + NOTIFY_RECHECK_MS, state: { delivery_id: deliveryId } };
}

function failed(code: string, message: string): StepExecution {
  return { kind: 'failed', code, message, retryable: false };
}
