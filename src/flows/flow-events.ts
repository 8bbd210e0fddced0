import { Injectable, Logger } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { FlowRunEntity, FlowStepEntity } from './entities/flow.entities';

export type FlowEventType =
  'flow.started' | 'flow.step.completed' | 'flow.completed' | 'flow.failed' | 'flow.cancelled';

export const FLOW_EVENT_TYPES: readonly FlowEventType[] = [
  'flow.started',
  'flow.step.completed',
  'flow.completed',
  'flow.failed',
  'flow.cancelled',
];

/** One lifecycle event of a run, published after the transition it tells of is committed. */
export interface FlowEvent {
  type: FlowEventType;
  runId: string;
  flowId: string;
  userId: string;
  timestamp: Date;
  run: FlowRunEntity;
  step?: FlowStepEntity;
}

/** The body a run's event is delivered and streamed with. */
export function flowEventBody(event: FlowEvent): Record<string, unknown> {
  return {
    event_type: event.type,
    run_id: event.runId,
    flow_id: event.flowId,
    version: event.run.version,
    status: event.run.status,
    timestamp: event.timestamp.toISOString(),
    ...(event.step
      ? { step: { id: event.step.stepId, kind: event.step.kind, status: event.step.status, output: event.step.output } }
      : {}),
    ...(event.run.error ? { error: event.run.error } : {}),
  };
}

/** The one place run events leave from (the process that made the transition): logs, listeners, webhooks. */
@Injectable()
export class FlowEvents {
  private readonly logger = new Logger('FlowEvents');
  private readonly subject = new Subject<FlowEvent>();
  private readonly deliverers: ((event: FlowEvent) => Promise<void>)[] = [];

  readonly events$: Observable<FlowEvent> = this.subject.asObservable();

  /**
   * Adds what sends a flow's events to its `webhook_url` (its deliveries): called for every event; a failure is
   * logged, never thrown (the transition is committed and the row is the record).
   */
  addDeliverer(deliver: (event: FlowEvent) => Promise<void>): void {
    this.deliverers.push(deliver);
  }

  publish(run: FlowRunEntity, type: FlowEventType, step?: FlowStepEntity): void {
    const event: FlowEvent = {
      type,
      runId: run.id,
      flowId: run.flowId,
      userId: run.userId,
      timestamp: new Date(),
      run,
      step,
    };
    this.logger.log({ runId: run.id, flowId: run.flowId, event: type, step: step?.stepId }, type);
    this.subject.next(event);
    // Webhook deliveries of the flow's webhook_url hook in here (addDeliverer).
    for (const deliver of this.deliverers) {
      deliver(event).catch((err: Error) =>
        this.logger.warn({ runId: run.id, event: type }, `flow event not delivered: ${err.message}`),
      );
    }
  }
}
