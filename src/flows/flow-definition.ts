import type { FlowTrigger } from './flow-ports';
import { FlowStep, FlowStepExecutor } from './flow-step.types';

/** The most steps one flow may have. */
export const MAX_STEPS = 50;
export const MAX_ATTEMPTS = 10;
export const MAX_BACKOFF_MS = 3_600_000;
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 3_600_000;
/** Where a step that ends the run points. */
export const END = 'end';

const STEP_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TRIGGER_TYPES = ['webhook', 'api', 'schedule'];

/** The step after `index` in the list, or "end" after the last. */
export function followingStep(steps: readonly FlowStep[], index: number): string {
  return steps[index + 1]?.id ?? END;
}

/** Where a step goes when it completes without choosing (its `next`, else the following one). */
export function nextOf(steps: readonly FlowStep[], index: number): string {
  return steps[index].next ?? followingStep(steps, index);
}

/** Every step a step may lead to: its next, its branches, and its on_error target. */
function successors(steps: readonly FlowStep[], index: number): string[] {
  const step = steps[index];
  const out = new Set<string>();
  if (step.kind === 'condition') {
    const fallThrough = nextOf(steps, index);
    if (step.switch !== undefined) {
      for (const target of Object.values(step.cases ?? {})) out.add(target);
      out.add(step.default ?? fallThrough);
    } else {
      out.add(step.then ?? fallThrough);
      out.add(step.else ?? fallThrough);
    }
  } else {
    out.add(nextOf(steps, index));
  }
  if (step.on_error && step.on_error !== 'fail' && step.on_error !== 'continue') out.add(step.on_error);
  out.delete(END);
  return [...out];
}

/** A loop of the step graph, as the ids on it (first repeated at the end), or null when it has none. */
export function findLoop(steps: readonly FlowStep[]): string[] | null {
  const indexOf = new Map(steps.map((s, i) => [s.id, i]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === 'done') return null;
    if (state.get(id) === 'open') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'open');
    path.push(id);
    const index = indexOf.get(id);
    if (index !== undefined) {
      for (const next of successors(steps, index)) {
        const loop = visit(next);
        if (loop) return loop;
      }
    }
    path.pop();
    state.set(id, 'done');
    return null;
  };
  for (const step of steps) {
    const loop = visit(step.id);
    if (loop) return loop;
  }
  return null;
}

/**
 * Every problem of a flow's steps, each "steps[<i>].<field>: <message>" (or "steps: …" for the whole list): ids,
 * kinds, the fields every step has, targets that exist, the kind's own checks (its executor's), and no loop.
 */
export function stepsProblems(value: unknown, executors: readonly FlowStepExecutor[]): string[] {
  if (!Array.isArray(value)) return ['steps: must be an array of steps'];
  if (value.length === 0) return ['steps: a flow needs at least one step'];
  if (value.length > MAX_STEPS) return [`steps: at most ${MAX_STEPS} steps, not ${value.length}`];
  const problems: string[] = [];
  const byKind = new Map(executors.map((e) => [e.kind as string, e]));
  const ids = new Set<string>();
  value.forEach((raw, i) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`steps[${i}]: must be an object`);
      return;
    }
    const step = raw as Record<string, unknown>;
    if (typeof step.id !== 'string' || !STEP_ID.test(step.id)) {
      problems.push(`steps[${i}].id: must be 1-64 letters, digits, '_' or '-'`);
    } else if (step.id === END) {
      problems.push(`steps[${i}].id: "end" is reserved (it ends the run)`);
    } else if (ids.has(step.id)) {
      problems.push(`steps[${i}].id: "${step.id}" is used by an earlier step`);
    } else {
      ids.add(step.id);
    }
  });
  const isTarget = (v: unknown) => typeof v === 'string' && (v === END || ids.has(v));
  const target = (i: number, field: string, v: unknown) => {
    if (v !== undefined && !isTarget(v)) {
      problems.push(`steps[${i}].${field}: must be a step id of this flow or "end", not ${JSON.stringify(v)}`);
    }
  };
  value.forEach((raw, i) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return;
    const step = raw as Record<string, unknown>;
    target(i, 'next', step.next);
    if (step.on_error !== undefined && step.on_error !== 'fail' && step.on_error !== 'continue') {
      if (!isTarget(step.on_error)) {
        problems.push(`steps[${i}].on_error: must be "fail", "continue" or a step id of this flow`);
      }
    }
    intField(problems, i, step, 'attempts', 1, MAX_ATTEMPTS);
    intField(problems, i, step, 'backoff_ms', 0, MAX_BACKOFF_MS);
    intField(problems, i, step, 'timeout_ms', MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
    if (step.kind === 'condition') {
      target(i, 'then', step.then);
      target(i, 'else', step.else);
      target(i, 'default', step.default);
      if (step.cases && typeof step.cases === 'object' && !Array.isArray(step.cases)) {
        for (const [key, v] of Object.entries(step.cases)) target(i, `cases.${key}`, v);
      }
    }
    if (typeof step.kind !== 'string') {
      problems.push(`steps[${i}].kind: required (task, condition, http, delay or notify)`);
      return;
    }
    const executor = byKind.get(step.kind);
    if (!executor) {
      problems.push(`steps[${i}].kind: unknown kind "${step.kind}"`);
      return;
    }
    for (const problem of executor.problems(step as unknown as FlowStep)) problems.push(`steps[${i}].${problem}`);
  });
  if (problems.length === 0) {
    const loop = findLoop(value as FlowStep[]);
    if (loop) problems.push(`steps: the steps can loop forever (${loop.join(' → ')}); a flow must not go back`);
  }
  return problems;
}

function intField(
  problems: string[],
  i: number,
  step: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
) {
  const v = step[field];
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push(`steps[${i}].${field}: must be a whole number from ${min} to ${max}`);
  }
}

/** The problems of a trigger that every type shares (a schedule's own are FlowSchedules'). */
export function triggerProblems(value: unknown): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['trigger: must be an object'];
  const trigger = value as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof trigger.type !== 'string' || !TRIGGER_TYPES.includes(trigger.type)) {
    problems.push('trigger.type: must be webhook, api or schedule');
  }
  if (trigger.secret !== undefined && (typeof trigger.secret !== 'string' || trigger.secret.length < 8)) {
    problems.push('trigger.secret: must be a string of at least 8 characters');
  }
  if (typeof trigger.secret === 'string' && trigger.secret.length > 500) {
    problems.push('trigger.secret: at most 500 characters');
  }
  if (trigger.require_api_key !== undefined && typeof trigger.require_api_key !== 'boolean') {
    problems.push('trigger.require_api_key: must be a boolean');
  }
  if (
    trigger.event_id_header !== undefined &&
    (typeof trigger.event_id_header !== 'string' || !/^[A-Za-z0-9-]{1,100}$/.test(trigger.event_id_header))
  ) {
    problems.push('trigger.event_id_header: must be a header name');
  }
  for (const field of ['cron', 'timezone', 'every']) {
    if (trigger[field] !== undefined && typeof trigger[field] !== 'string') {
      problems.push(`trigger.${field}: must be a string`);
    }
  }
  if (trigger.type === 'schedule' && trigger.cron === undefined && trigger.every === undefined) {
    problems.push('trigger.cron: a schedule needs cron or every');
  }
  return problems;
}

/** Request headers of http steps whose values are credentials: never shown back. */
const SECRET_HEADER = /authorization|cookie|token|secret|api[-_]?key|signature|password/i;

/**
 * Steps as the API shows them: a notify step's secret never (`has_secret` instead), the values of an http step's
 * credential headers (authorization, API keys, cookies…) as `***`. A PUT gives them again.
 */
export function publicSteps(steps: FlowStep[]): Record<string, unknown>[] {
  return steps.map((step) => {
    if (step.kind === 'notify') {
      const { secret, ...rest } = step;
      return { ...rest, has_secret: !!secret };
    }
    if (step.kind === 'http' && step.headers && typeof step.headers === 'object') {
      const headers = Object.fromEntries(
        Object.entries(step.headers).map(([name, value]) => [name, SECRET_HEADER.test(name) ? '***' : value]),
      );
      return { ...step, headers };
    }
    return { ...step };
  });
}

/** A trigger as the API shows it: the secret never, `has_secret` instead. */
export function publicTrigger(trigger: FlowTrigger): Record<string, unknown> {
  const { secret, ...rest } = trigger;
  return { ...rest, has_secret: !!secret };
}
