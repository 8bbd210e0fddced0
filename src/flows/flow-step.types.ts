import type { FlowContext } from './expressions';

/** What a step's `kind` may be. */
export type FlowStepKind = 'task' | 'condition' | 'http' | 'delay' | 'notify';

/** Where a step goes when it fails for good: stop the run, go on to the next step, or go to a named step. */
export type OnError = string; // 'fail' | 'continue' | a step id

/** What every step has, whatever its kind (CONTRACT.md "Flows"). */
export interface BaseStep {
  id: string;
  kind: FlowStepKind;
  /** The step that follows; by default the next one in the list, `"end"` ends the run. */
  next?: string;
  attempts?: number;
  backoff_ms?: number;
  timeout_ms?: number;
  on_error?: OnError;
}

export interface TaskStep extends BaseStep {
  kind: 'task';
  task_type: string;
  input: Record<string, unknown>;
}

export interface ConditionStep extends BaseStep {
  kind: 'condition';
  /** A JSONata expression over the run context; its truthiness picks `then` or `else`. */
  if?: string;
  then?: string;
  else?: string;
  /** Or a switch: the value of `switch` picks a case, `default` otherwise. */
  switch?: string;
  cases?: Record<string, string>;
  default?: string;
}

export interface HttpStep extends BaseStep {
  kind: 'http';
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface DelayStep extends BaseStep {
  kind: 'delay';
  seconds?: number;
  /** An ISO time, or a template that renders to one. */
  until?: string;
}

export interface NotifyStep extends BaseStep {
  kind: 'notify';
  url: string;
  body?: unknown;
  /** Signs the POST (Standard Webhooks and `X-Signature: sha256=<hex>`, as task webhooks are signed). */
  secret?: string;
}

export type FlowStep = TaskStep | ConditionStep | HttpStep | DelayStep | NotifyStep;

/** The defaults of each kind, as the chatbot system's queues had them (attempts, first backoff, timeout). */
export const STEP_DEFAULTS: Record<FlowStepKind, { attempts: number; backoffMs: number; timeoutMs: number }> = {
  // A task has its own attempts and timeout; the step's are for creating it.
  task: { attempts: 3, backoffMs: 2000, timeoutMs: 60_000 },
  condition: { attempts: 1, backoffMs: 2000, timeoutMs: 1_000 },
  // The chatbot system's flow processing: priority 2, 3 attempts, 60 s.
  http: { attempts: 3, backoffMs: 2000, timeoutMs: 60_000 },
  delay: { attempts: 1, backoffMs: 2000, timeoutMs: 60_000 },
  // Its notifications: priority 3, 2 attempts, 15 s.
  notify: { attempts: 2, backoffMs: 2000, timeoutMs: 15_000 },
};

/** A step's run, as the executor of its kind is given it. */
export interface StepRun<S extends FlowStep = FlowStep> {
  runId: string;
  flowId: string;
  /** The run's owner: what a step does on the user's behalf is done as them (quotas, credits, URL guard). */
  userId: string;
  step: S;
  /** 1 for the first try of this step in this run, counting retries. */
  attempt: number;
  /** The run's round (a retried run's is one more): what a step makes is named by run, step and round. */
  round?: number;
  /** The flow's priority: the tasks a step makes have it unless their input names one. */
  priority?: string;
  context: FlowContext;
  /** Aborted at the step's timeout, or when the run is cancelled. */
  signal: AbortSignal;
  /** What the step's earlier visits left (a task step's task id, a delay's wake time), null on the first. */
  state: Record<string, unknown> | null;
}

/** How a step's execution ended this time. */
export type StepExecution =
  /** Done: `output` is kept as `steps.<id>.output` (and `response` for http); `next` overrides the step's own. */
  | { kind: 'done'; output?: unknown; response?: unknown; next?: string }
  /** Not done yet, and no worker held: run again at `untilMs` or sooner (a task's terminal event); `state` is kept. */
  | { kind: 'wait'; untilMs: number; state: Record<string, unknown> }
  /** Failed this time: retried while attempts remain when `retryable`, else the step's `on_error` applies. */
  | { kind: 'failed'; code: string; message: string; retryable: boolean };

/** Runs the steps of one kind; one provider of this class per kind, found by `kind`. */
export abstract class FlowStepExecutor<S extends FlowStep = FlowStep> {
  abstract readonly kind: FlowStepKind;

  /** Problems of a step's definition of this kind, each "<field>: <message>" (the API answers 400 with them). */
  abstract problems(step: S): string[];

  abstract execute(run: StepRun<S>): Promise<StepExecution>;
}

/** The injection token of the list of every kind's executor. */
export const FLOW_STEP_EXECUTORS = Symbol('FLOW_STEP_EXECUTORS');
