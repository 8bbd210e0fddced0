/**
 * The seams between the parts of flows: the runs (flow-runs.service.ts) start runs for the triggers (inbound hooks,
 * schedules, the API), and the definitions (flows.service.ts) keep the schedules in step with each flow's trigger.
 */

/** Where a run came from. */
export type RunSource = 'webhook' | 'api' | 'schedule';

export interface StartRun {
  flowId: string;
  /** The run's `trigger` context: a hook's body, the API's `input`, a tick's `{scheduled_at}`. */
  trigger: unknown;
  source: RunSource;
  /**
   * A key that makes a repeat the same run: a sender's event id (`hook:<id>`), a tick's time (`tick:<ms>`), an
   * Idempotency-Key. A second start with the same key answers the first run, `created: false`.
   */
  dedupeKey?: string;
}

/** Starts runs: one row in the same transaction as its dedupe key, then its first step's job. */
export abstract class FlowRunStarter {
  /** Null when the flow does not exist (or is deleted); the run is `queued` when this returns. */
  abstract start(request: StartRun): Promise<{ runId: string; created: boolean } | null>;
}

/** What an inbound hook needs to know of its flow, found by the hook's id. */
export interface HookTarget {
  flowId: string;
  userId: string;
  /** The per-hook secret the sender signs with (Standard Webhooks, or `sha256=<hex>` of the body); null: unsigned. */
  secret: string | null;
  /** The request must also carry an API key (or token) of the flow's owner. */
  requireKey: boolean;
  /** The header holding the sender's event id, when not `webhook-id`. */
  eventIdHeader: string | null;
}

export abstract class FlowHookDirectory {
  /** The hook's flow, or null when there is none (or it was deleted): the hook answers 404. */
  abstract find(hookId: string): Promise<HookTarget | null>;
}

/** A flow's trigger as stored (CONTRACT.md "Flows"). */
export interface FlowTrigger {
  type: 'webhook' | 'api' | 'schedule';
  /** webhook: the per-hook secret; never returned by the API. */
  secret?: string;
  require_api_key?: boolean;
  event_id_header?: string;
  /** schedule: a cron expression (with `timezone`, IANA) or an interval such as `15m`. */
  cron?: string;
  timezone?: string;
  every?: string;
}

/** Keeps each scheduled flow's BullMQ job scheduler in step with its trigger. */
export abstract class FlowSchedules {
  /** Problems of a schedule trigger, each "trigger.<field>: <message>" (none for other triggers). */
  abstract problems(trigger: FlowTrigger): string[];
  /** After a flow is created or changed: a schedule trigger has its scheduler, any other has none. */
  abstract sync(flowId: string, trigger: FlowTrigger | null): Promise<void>;
  /** After a flow is deleted. */
  abstract remove(flowId: string): Promise<void>;
  /** The next `count` ticks of a schedule trigger (ISO times), for GET. */
  abstract nextTicks(trigger: FlowTrigger, count: number): string[];
}
