import type { Cost, MediaProvider, ProviderJobRef, ProviderOutput } from '../providers/provider.port';
import type { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStatus, TaskType } from '../tasks/task.enums';

/** A provider's finished work, in hand: its outputs still to be copied into storage. */
export interface CompletedCall {
  provider: MediaProvider;
  output: ProviderOutput;
  cost?: Cost;
  latencyMs: number;
}

/**
 * What a run of a task job does next. Each kind is one use case under steps/:
 * - `skip`: the task is not processing (finished, or pending): a duplicate or stale job, nothing to do.
 * - `timed-out`: past the type's timeout: fail it and stop its provider job.
 * - `fan-out`: a large img2vid task not split yet: split it into parts (or run it whole).
 * - `collect`: a split task: wait for its parts, then aggregate them or fail on one.
 * - `poll`: a provider job is stored: ask the provider how it is going.
 * - `cached`: look the result up in the cache, or wait for the identical task in flight.
 * - `submit`: admit the task at the best provider and start it there.
 * - `store`: the provider finished: copy the outputs into storage and complete the task.
 */
export type TaskStep =
  | { kind: 'skip' }
  | { kind: 'timed-out' }
  | { kind: 'fan-out' }
  | { kind: 'collect' }
  | { kind: 'poll'; provider: string; providerJob: ProviderJobRef }
  | { kind: 'cached'; cacheKey: string }
  | { kind: 'submit' }
  | { kind: 'store'; call: CompletedCall };

/** The steps a run goes through (skipping or timing out a task is decided before a run begins). */
export type RunStep = Exclude<TaskStep, { kind: 'skip' } | { kind: 'timed-out' }>;

/** What the row alone does not say. */
export interface StepFacts {
  now: number;
  /** The task type's timeout (ms). */
  timeoutMs: number;
  /** FANOUT_PART_MIN_IMAGES: a task of twice as many images or more is split (0: never). */
  partMinImages: number;
  /** The task's key in the result cache; undefined when the cache is off or the task bypasses it. */
  cacheKey?: string;
}

/**
 * The time a task must be done by: its timeout after it first started. A task already `processing` is a later step,
 * or a job delivered again after its worker died: same deadline.
 */
export function deadlineOf(task: Pick<TaskEntity, 'startedAt'>, timeoutMs: number, now: number): number {
  return (task.startedAt?.getTime() ?? now) + timeoutMs;
}

/** Whether this task is split into parts (or already was): an img2vid task with many images, not a part itself. */
export function isSplit(task: TaskEntity, partMinImages: number): boolean {
  if (task.type !== TaskType.Img2Vid || task.parentId) return false;
  if (task.parts) return true;
  const images = Array.isArray(task.input.images) ? task.input.images.length : 0;
  return partMinImages > 0 && !task.providerJob && images >= 2 * partMinImages;
}

/** The next step of a task from its row (as the run found or started it) and the facts the row does not hold. */
export function nextStep(task: TaskEntity, facts: StepFacts): TaskStep {
  if (task.status !== TaskStatus.Processing) return { kind: 'skip' };
  if (facts.now >= deadlineOf(task, facts.timeoutMs, facts.now)) return { kind: 'timed-out' };
  if (isSplit(task, facts.partMinImages)) return task.parts ? { kind: 'collect' } : { kind: 'fan-out' };
  const providerJob = task.providerJob as ProviderJobRef | null;
  if (providerJob && task.provider) return { kind: 'poll', provider: task.provider, providerJob };
  return wholeTaskStep(facts.cacheKey);
}

/** The first step of a task that runs whole at a provider: the cache first, when it applies. */
export function wholeTaskStep(cacheKey: string | undefined): RunStep {
  return cacheKey ? { kind: 'cached', cacheKey } : { kind: 'submit' };
}
