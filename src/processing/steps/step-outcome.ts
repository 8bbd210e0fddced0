import type { RunStep } from '../task-step';

/**
 * What a step answers. The task processor turns it into BullMQ's terms in one place:
 * - `done`: this run is over (the job completes);
 * - `later`: the job goes back to the delayed set and runs again after `ms` (a poll, a wait for a slot or a result);
 * - `waiting-children`: the job waits for its parts' jobs (it was moved to waiting-children already);
 * - `next`: go on with another step in the same run;
 * - `failed`: the run failed (at `provider`, when one was called): the failure step decides what follows.
 */
export type StepOutcome =
  | { kind: 'done' }
  | { kind: 'later'; ms: number }
  | { kind: 'waiting-children' }
  | { kind: 'next'; step: RunStep }
  | { kind: 'failed'; error: unknown; provider?: string };

export const DONE: StepOutcome = { kind: 'done' };

export function later(ms: number): StepOutcome {
  return { kind: 'later', ms };
}

export function next(step: RunStep): StepOutcome {
  return { kind: 'next', step };
}
