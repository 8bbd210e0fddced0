import { AppConfig } from '../config/app-config';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface ProviderHealth {
  /** Smoothed share of successful calls (1 when nothing is known yet). */
  successRate: number;
  /** Smoothed latency of successful calls, ms (null when nothing is known yet). */
  latencyMs: number | null;
  inFlight: number;
  circuit: CircuitState;
  calls: number;
  failures: number;
}

/** What a backend keeps of one provider's health, as read back (absent fields: nothing recorded yet). */
export interface StoredHealth {
  circuit?: CircuitState | null;
  /** Epoch ms the circuit last opened. */
  openedAt: number | null;
  success: number | null;
  latency: number | null;
  calls: number;
  failures: number;
}

export type Admission = 'admitted' | 'circuit_open' | 'capped';

export const EWMA_ALPHA = 0.2;
/** A line nobody asks in for this long is dropped whole (each admission renews it). */
export const LINE_TTL_MS = 60_000;

/**
 * A task's place in a capped provider's line: priority first (urgent before low), then age. The parts of a split
 * task carry its creation time, so they stand where it would.
 */
export function lineTicket(priorityRank: number, createdAt: Date): number {
  return priorityRank * 1e13 + createdAt.getTime();
}

/**
 * Live health of each provider, shared by every process so every worker routes on the same facts (DESIGN decision
 * 6), and the cluster-wide concurrency caps (decision 5). Kept in Redis (RedisProviderHealth) or in the platform's
 * Postgres (PostgresProviderHealth), as QUEUE_BACKEND says; both give the same answers.
 */
export abstract class ProviderHealthService {
  constructor(protected readonly config: AppConfig) {}

  /**
   * Feeds one call's outcome into the provider's health; `release` also frees that task's slot, in the same trip, and
   * answers the task first in the provider's line (its delayed job is then run at once: the slot is its).
   */
  abstract record(name: string, ok: boolean, latencyMs: number, release?: string): Promise<string | undefined>;

  /**
   * May `taskId` call the provider now? 'circuit_open' while its circuit is open (after the cool-down, one trial
   * caller is admitted), 'capped' when its `cap` slots are taken (the task keeps its place in the provider's line
   * while it asks again within `line.staleMs`; lower `line.ticket` goes first); else the task holds a slot until
   * `ttlMs` from now (idempotent per task).
   */
  abstract admit(
    name: string,
    taskId: string,
    cap: number,
    ttlMs: number,
    line?: { ticket: number; staleMs: number },
  ): Promise<Admission>;

  /**
   * Puts tasks in a capped provider's line before they ask for a slot (the parts of a split task, as they are made),
   * so tasks that ask later with younger tickets do not take the slots first. Places already held are kept.
   */
  abstract join(name: string, taskIds: string[], ticket: number): Promise<void>;

  /** Frees the task's slot, and its place in the line if it was waiting for one; answers who is first in line now. */
  abstract release(name: string, taskId: string): Promise<string | undefined>;

  /** Health of several providers in one round trip (routing reads them for every task). */
  abstract snapshots(names: string[]): Promise<ProviderHealth[]>;

  async snapshot(name: string): Promise<ProviderHealth> {
    return (await this.snapshots([name]))[0];
  }

  /** An open circuit past its cool-down reads as half-open: the next caller gets the trial call. */
  protected toHealth(h: StoredHealth, inFlight: number): ProviderHealth {
    let circuit = h.circuit ?? 'closed';
    if (circuit === 'open' && Date.now() - (h.openedAt ?? 0) >= this.config.circuit.cooldownMs) {
      circuit = 'half_open';
    }
    return {
      successRate: h.success === null ? 1 : Math.round(h.success * 1000) / 1000,
      latencyMs: h.latency === null ? null : Math.round(h.latency),
      inFlight,
      circuit,
      calls: h.calls,
      failures: h.failures,
    };
  }
}
