import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { lineTicket, ProviderHealthService } from '../../providers/provider-health.service';
import { MediaProvider, ProviderError, StartOutcome } from '../../providers/provider.port';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TasksRepository } from '../../tasks/tasks.repository';
import { QUEUE_PRIORITY } from '../../tasks/task.enums';
import { ProviderCalls } from '../provider-calls';
import { WaitingTasks } from '../waiting-tasks';
import { later, next, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/** How long a task waits for a slot at a capped provider before it asks again (no worker slot held). */
export const CAPPED_RETRY_MS = 1000;

type Started = { kind: 'started'; provider: MediaProvider; outcome: StartOutcome & { latencyMs: number } };

/**
 * Admits the task at the best routed provider and starts it there: an open circuit or a full cap skips a provider, a
 * transient failure falls back to the next. When every candidate is capped, the task waits (delayed, no worker slot
 * held) instead of failing. An async provider's job is stored and polled later (DESIGN decision 4).
 */
@Injectable()
export class SubmitTask {
  private readonly logger = new Logger('SubmitTask');

  constructor(
    private readonly config: AppConfig,
    private readonly registry: ProviderRegistry,
    private readonly health: ProviderHealthService,
    private readonly calls: ProviderCalls,
    private readonly waiting: WaitingTasks,
    private readonly tasks: TasksRepository,
  ) {}

  async run(ctx: StepContext): Promise<StepOutcome> {
    const started = await this.startAtCappedProvider(ctx);
    // Cancelled while it asked for a slot: the place it may have taken in a line is not kept. (A run stopped for
    // another reason keeps it: the task runs on elsewhere, and another run of it may hold a slot under its id.)
    if (started.kind === 'later' && ctx.run.abortReason === 'cancelled') await this.waiting.leaveLines(ctx.task);
    if (started.kind !== 'started') return started;
    const { provider, outcome } = started;
    try {
      ctx.run.signal.throwIfAborted();
      if (outcome.kind === 'completed') return next({ kind: 'store', call: { provider, ...outcome } });
      await this.tasks.saveProviderJob(ctx.task.id, provider.name, outcome.job);
      return later(outcome.pollAfterMs * this.config.providerPollScale);
    } catch (error) {
      if (outcome.kind === 'completed') await outcome.output.release?.().catch(() => undefined);
      return { kind: 'failed', error, provider: provider.name };
    }
  }

  /** Asking a capped provider for a slot again is a poll of sorts: PROVIDER_POLL_SCALE applies. */
  get cappedRetryMs(): number {
    return Math.max(10, Math.round(CAPPED_RETRY_MS * this.config.providerPollScale));
  }

  /**
   * The task's own caps first (an image operation's, whatever the provider: ProviderRegistry.taskCapsOf), in their
   * fair lines as a capped provider's: at one of them, the task waits (delayed, no worker slot held) and others run.
   * Their slots are held while a provider runs the task, and freed here when no provider started it.
   */
  private async startAtCappedProvider(ctx: StepContext): Promise<Started | StepOutcome> {
    const { task, call, run } = ctx;
    const candidates = await this.registry.route(call, task.options);
    const line = this.lineOf(ctx);
    for (const { key, cap } of this.registry.taskCapsOf(task)) {
      const ttl = Math.max(1000, run.deadline - Date.now());
      if ((await this.health.admit(key, task.id, cap, ttl, line)) === 'capped') {
        await this.waiting.releaseTaskCaps(task, key);
        return later(this.cappedRetryMs);
      }
    }
    const started = await this.startAtBestProvider(ctx, candidates, line);
    if (started.kind !== 'started') await this.waiting.releaseTaskCaps(task);
    return started;
  }

  /** A capped slot's line: by priority, then age (a part is as old as its task). */
  private lineOf({ task }: StepContext): { ticket: number; staleMs: number } {
    return {
      ticket: lineTicket(QUEUE_PRIORITY[task.priority], task.createdAt),
      staleMs: Math.max(5000, 5 * this.cappedRetryMs),
    };
  }

  private async startAtBestProvider(
    { task, call, run }: StepContext,
    candidates: MediaProvider[],
    waitingList: { ticket: number; staleMs: number },
  ): Promise<Started | StepOutcome> {
    let lastError: ProviderError | undefined;
    /** The capped providers whose lines the task stood in on the way to this one. */
    const cappedAt: string[] = [];
    for (const provider of candidates) {
      const cap = this.registry.capOf(provider.name) ?? Number.MAX_SAFE_INTEGER;
      const ttl = Math.max(1000, run.deadline - Date.now());
      const admission = await this.health.admit(provider.name, task.id, cap, ttl, waitingList);
      if (admission === 'circuit_open') {
        lastError ??= ProviderError.transient(
          'circuit_open',
          `${provider.name} is cooling down after repeated failures`,
        );
        continue;
      }
      if (admission === 'capped') {
        cappedAt.push(provider.name);
        continue;
      }
      // Admitted here, it leaves the lines it stood in at busier providers: a place it will not take would hold back
      // the tasks behind it until it lapsed (it keeps its ticket, so it is no later there if it ever asks again).
      for (const name of cappedAt.splice(0)) await this.waiting.releaseSlot(name, task.id);
      try {
        return { kind: 'started', provider, outcome: await this.calls.timed(provider, () => provider.start(call)) };
      } catch (error) {
        await this.waiting.releaseSlot(provider.name, task.id);
        if (run.signal.aborted || !(error instanceof ProviderError) || !error.retryable) {
          return { kind: 'failed', error, provider: provider.name };
        }
        this.logger.warn(
          { taskId: task.id, provider: provider.name, code: error.code },
          `falling back: ${error.message}`,
        );
        lastError = error;
      }
    }
    if (cappedAt.length && !lastError) return later(this.cappedRetryMs);
    return {
      kind: 'failed',
      error: lastError ?? ProviderError.transient('provider_unavailable', 'every provider is busy'),
    };
  }
}
