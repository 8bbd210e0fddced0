import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DelayedError, Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { lineTicket, ProviderHealthService } from '../providers/provider-health.service';
import {
  Cost,
  MediaProvider,
  PollOutcome,
  providerContext,
  ProviderContext,
  ProviderError,
  ProviderErrorCode,
  ProviderJobRef,
  ProviderOutput,
  StartOutcome,
} from '../providers/provider.port';
import { ProviderRegistry } from '../providers/provider.registry';
import { parseTaskRunData } from '../queue/job.types';
import { QueueName } from '../queue/queue.constants';
import { QueueGateway } from '../queue/queue.gateway';
import { TaskSignalsService } from '../queue/task-signals.service';
import { CachedResult, ResultCache } from '../cache/result-cache.service';
import { outputPrefix } from '../storage/storage.backend';
import { StorageService, StoredFile } from '../storage/storage.service';
import { TaskEntity, TaskError } from '../tasks/entities/task.entity';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { QUEUE_PRIORITY, TaskErrorCode, TaskStatus, TaskType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { TasksService } from '../tasks/tasks.service';
import { drainBudgetMs } from '../shutdown';
import { FanOut } from './fan-out';
import { makeBackoffStrategy } from './retry-policy';
import { resolveTaskTimeouts } from './task-timeouts';

const PROGRESS_INTERVAL_MS = 1000;
/**
 * How long a task waits for an identical one in flight before it looks at the cache again, if nothing wakes it
 * sooner (the leader wakes its waiters when it ends; this covers a wake-up that came too early or was lost).
 */
const SINGLE_FLIGHT_WAIT_MS = 1000;
/** How long a task waits for a slot at a capped provider before it looks again (no worker slot held). */
const CAPPED_RETRY_MS = 1000;

type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lock_lost';

/** One run of a task job in this process: the lock token BullMQ gave it, and the signal that stops it. */
interface Run {
  taskId: string;
  token?: string;
  controller: AbortController;
}

/** A failure that ends the run, with the provider it happened at (for the task's record). */
class AttemptError extends Error {
  constructor(
    readonly provider: string,
    override readonly cause: unknown,
  ) {
    super(`${provider}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** The job goes back to the delayed set: a later step of the same run (a poll, a wait for a capped provider). */
class Later {
  constructor(readonly delayMs: number) {}
}

/**
 * Runs task jobs. One run is a series of steps of the same BullMQ job: route → start at the best provider
 * (falling back to the next on transient failures, skipping open circuits and full caps) → for async providers,
 * store the provider job and come back as a delayed step to poll it (DESIGN decision 4) → copy the outputs into
 * storage → complete. Transient failures go back to `queued` and are rethrown so BullMQ's backoff applies;
 * permanent ones and the last attempt fail the task and end the job with UnrecoverableError.
 */
@Processor(QueueName.Tasks, { autorun: false })
export class TaskProcessor extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('TaskProcessor');
  private readonly running = new Set<Run>();
  private readonly timeouts: Record<TaskType, number>;

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly registry: ProviderRegistry,
    private readonly health: ProviderHealthService,
    private readonly storage: StorageService,
    private readonly signals: TaskSignalsService,
    private readonly metrics: MetricsService,
    private readonly cache: ResultCache,
    private readonly fanOut: FanOut,
    private readonly service: TasksService,
    private readonly queue: QueueGateway,
  ) {
    super();
    this.timeouts = resolveTaskTimeouts(config.taskTimeoutOverrides);
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.workerConcurrency;
    // A dead worker's jobs come back after the lock lapses: the stalled check runs as often as a lock lasts. The
    // worker is built by the decorator (autorun off) before the configuration is known: its lock manager, made in
    // its constructor, is made again with these settings before the worker runs.
    Object.assign(this.worker.opts, {
      lockDuration: this.config.workerLockMs,
      lockRenewTime: this.config.workerLockMs / 2,
      stalledInterval: this.config.workerLockMs,
    });
    (this.worker as unknown as { createLockManager(): void }).createLockManager();
    this.worker.opts.settings = {
      ...this.worker.opts.settings,
      backoffStrategy: makeBackoffStrategy(this.config.taskRetryDelaysMs),
    };
    this.signals.onCancel((taskId) => this.abort(taskId, 'cancelled'));
    // A run whose lock could not be renewed is no longer this worker's: the job is (or will be) another run's.
    this.worker.on('lockRenewalFailed', (jobIds: string[]) => void this.onLockLost(jobIds));
    void this.worker.run().catch((err: Error) => this.logger.error(`worker stopped: ${err.message}`));
  }

  /**
   * SIGTERM: stop taking jobs, give running ones most of SHUTDOWN_TIMEOUT_MS (drainBudgetMs), then abort them (they
   * are retried elsewhere) and give the worker the rest to hand them back; the process exits at the timeout anyway.
   */
  async beforeApplicationShutdown(): Promise<void> {
    const timeoutMs = this.config.shutdownTimeoutMs;
    const drainMs = drainBudgetMs(timeoutMs);
    const closing = this.worker.close();
    if (await settlesWithin(closing, drainMs)) return;
    this.logger.warn(`${this.running.size} task(s) still running after ${drainMs} ms: aborting`);
    for (const run of this.running) run.controller.abort('shutdown' satisfies AbortReason);
    // The close under way ends once the aborted runs have been handed back (a second close would only wait for it).
    if (!(await settlesWithin(closing, timeoutMs - drainMs))) {
      this.logger.warn('the task worker did not close in time (is Redis reachable?)');
    }
  }

  async process(job: Job, token?: string): Promise<void> {
    const { taskId } = parseTaskRunData(job.data);
    // The common case first: a queued task starts in one statement; anything else needs a look at the row.
    let task = await this.stateMachine.start(taskId);
    if (!task) {
      task = await this.tasks.findById(taskId);
      if (!task) {
        this.logger.warn({ taskId }, 'job for a task that does not exist: dropped');
        return;
      }
      if (task.status !== TaskStatus.Processing) return; // finished or pending: a duplicate or stale job
    }
    // A task already `processing` is a later step, or a job delivered again after its worker died: same deadline.
    const deadline = (task.startedAt ?? new Date()).getTime() + this.timeouts[task.type];
    if (Date.now() >= deadline) {
      await this.timeOut(task);
      return;
    }

    // BullMQ hands a job to one holder at a time: an older run of this task here has lost its lock.
    this.abort(taskId, 'lock_lost');
    const controller = new AbortController();
    const run: Run = { taskId, token, controller };
    this.running.add(run);
    const timer = setTimeout(() => controller.abort('timeout' satisfies AbortReason), deadline - Date.now());
    const ctx = providerContext(task, {
      taskId,
      signal: controller.signal,
      reportProgress: this.progressReporter(taskId),
    });
    let provider: MediaProvider | undefined = task.provider ? this.registry.get(task.provider) : undefined;
    // Frees the outputs' local files (the provider's), once stored or dropped.
    let release: (() => Promise<void>) | undefined;
    try {
      const prefix = storagePrefix(task);
      let outcome: ((StartOutcome | PollOutcome) & { latencyMs: number }) | Later;
      if (this.fanOut.applies(task)) {
        const step = await this.fanOut.step(task, job, token);
        if (step.kind === 'waiting') throw new WaitingChildrenError();
        if (step.kind === 'later') return await this.later(job, token, step.ms);
        if (step.kind === 'done') return;
      }
      const providerJob = task.providerJob as ProviderJobRef | null;
      const attached = provider;
      if (providerJob && attached) {
        outcome = await this.timed(attached, () => attached.poll(ctx, providerJob));
      } else {
        const cacheKey = this.cacheKeyOf(task);
        if (cacheKey) {
          // An identical task finished earlier: its result, at no cost. One identical task in flight already:
          // wait for its result instead of calling the provider again (no worker slot held meanwhile).
          const hit = await this.cache.get(cacheKey);
          if (hit && (await this.completeFromCache(task, hit.result, prefix, controller.signal))) return;
          if (!(await this.cache.lead(cacheKey, task.id, deadline - Date.now()))) {
            return await this.later(job, token, SINGLE_FLIGHT_WAIT_MS);
          }
        }
        const started = await this.startAtBestProvider(task, ctx, deadline);
        provider = started.provider;
        outcome = started.outcome;
      }
      if (outcome instanceof Later) return await this.later(job, token, outcome.delayMs);
      if (outcome.kind === 'completed') release = outcome.output.release;
      controller.signal.throwIfAborted();
      switch (outcome.kind) {
        case 'submitted':
          await this.tasks.saveProviderJob(taskId, provider!.name, outcome.job);
          return await this.later(job, token, outcome.pollAfterMs * this.config.providerPollScale);
        case 'running':
          if (outcome.progress !== undefined) ctx.reportProgress(outcome.progress);
          await this.noteQueuePosition(task, outcome.queuePosition);
          return await this.later(job, token, outcome.pollAfterMs * this.config.providerPollScale);
        case 'completed':
          await this.finish(task, provider!, outcome, controller.signal, prefix);
          return;
      }
    } catch (err) {
      if (err instanceof DelayedError || err instanceof WaitingChildrenError) throw err;
      const attempt = err instanceof AttemptError ? err : undefined;
      if (attempt) provider = this.registry.get(attempt.provider);
      await this.handleFailure(job, task, provider, controller.signal, attempt ? attempt.cause : err);
    } finally {
      clearTimeout(timer);
      this.running.delete(run);
      await release?.().catch((err: Error) => this.logger.warn({ taskId }, `output files not freed: ${err.message}`));
    }
  }

  private abort(taskId: string, reason: AbortReason): void {
    for (const run of this.running) if (run.taskId === taskId) run.controller.abort(reason);
  }

  private isRunning(taskId: string): boolean {
    for (const run of this.running) if (run.taskId === taskId && !run.controller.signal.aborted) return true;
    return false;
  }

  /**
   * Stops the runs whose lock BullMQ could not renew (an event loop stalled or Redis away for longer than the lock),
   * so a job taken back and run again elsewhere is not also run on here: its provider calls stop. The lock is read
   * again to tell an older run of a job from a newer one; when it cannot be read, every run of the job stops.
   */
  private async onLockLost(jobIds: string[]): Promise<void> {
    for (const jobId of jobIds) {
      const runs = [...this.running].filter((run) => run.taskId === jobId);
      if (!runs.length) continue;
      const holder = await this.worker
        .getBackend()
        .client.then((client) => client.get(`${this.worker.toKey(jobId)}:lock`))
        .catch(() => undefined);
      for (const run of runs) {
        if (run.token !== undefined && run.token === holder) continue;
        this.logger.warn({ taskId: jobId }, 'lock lost (the job may run elsewhere): run stopped');
        run.controller.abort('lock_lost' satisfies AbortReason);
      }
    }
  }

  /** Connection trouble while Redis is away: BullMQ reconnects by itself; log it once per error, structured. */
  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn(`worker: ${err.message}`);
  }

  /** BullMQ's final word on a job (out of attempts, unrecoverable, stalled too often): make sure the row agrees. */
  @OnWorkerEvent('failed')
  async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    const final =
      err instanceof UnrecoverableError ||
      err.name === 'UnrecoverableError' ||
      job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    const taskId = (job.data as { taskId?: string }).taskId;
    if (!taskId) return;
    try {
      await this.stateMachine.fail(taskId, {
        code: err.message.includes('stalled') ? TaskErrorCode.Stalled : TaskErrorCode.InternalError,
        message: err.message,
      });
    } catch (e) {
      this.logger.error({ taskId }, `final-failure hook could not mark the task failed: ${(e as Error).message}`);
    }
  }

  /**
   * Tries the routed providers in order: an open circuit or a full cap skips one, a transient failure falls back to
   * the next. When every candidate is capped, the task waits (delayed, no slot held) instead of failing.
   */
  private async startAtBestProvider(
    task: TaskEntity,
    ctx: ProviderContext,
    deadline: number,
  ): Promise<{ provider?: MediaProvider; outcome: (StartOutcome & { latencyMs: number }) | Later }> {
    const candidates = await this.registry.route(ctx, task.options);
    let lastError: ProviderError | undefined;
    let capped = false;
    // Waiting for a capped provider's slot: the line's order is priority, then age (a part is as old as its task).
    const line = {
      ticket: lineTicket(QUEUE_PRIORITY[task.priority], task.createdAt),
      staleMs: Math.max(5000, 5 * this.cappedRetryMs),
    };
    for (const provider of candidates) {
      const cap = this.registry.capOf(provider.name) ?? Number.MAX_SAFE_INTEGER;
      const ttl = Math.max(1000, deadline - Date.now());
      const admission = await this.health.admit(provider.name, task.id, cap, ttl, line);
      if (admission === 'circuit_open') {
        lastError ??= ProviderError.transient(
          'circuit_open',
          `${provider.name} is cooling down after repeated failures`,
        );
        continue;
      }
      if (admission === 'capped') {
        capped = true;
        continue;
      }
      try {
        const outcome = await this.timed(provider, () => provider.start(ctx));
        return { provider, outcome };
      } catch (err) {
        this.wake(await this.health.release(provider.name, task.id));
        if (ctx.signal.aborted || !(err instanceof ProviderError) || !err.retryable) {
          throw new AttemptError(provider.name, err);
        }
        this.logger.warn({ taskId: task.id, provider: provider.name, code: err.code }, `falling back: ${err.message}`);
        lastError = err;
      }
    }
    if (capped && !lastError) return { outcome: new Later(this.cappedRetryMs) };
    throw lastError ?? ProviderError.transient('provider_unavailable', 'every provider is busy');
  }

  /** Asking a capped provider for a slot again is a poll of sorts: PROVIDER_POLL_SCALE applies. */
  private get cappedRetryMs(): number {
    return Math.max(10, Math.round(CAPPED_RETRY_MS * this.config.providerPollScale));
  }

  /** Runs one provider call and feeds its outcome to the shared health (success rate, latency, circuit) and metrics. */
  private async timed<T extends StartOutcome | PollOutcome>(
    provider: MediaProvider,
    call: () => Promise<T>,
  ): Promise<T & { latencyMs: number }> {
    const started = Date.now();
    try {
      const result = await call();
      const latencyMs = Date.now() - started;
      this.metrics.observeProviderCall(provider.name, 'ok', latencyMs);
      // A completed outcome is recorded by finish(), together with freeing the slot: one round trip fewer.
      if (result.kind !== 'completed') await this.health.record(provider.name, true, latencyMs).catch(() => undefined);
      return { ...result, latencyMs };
    } catch (err) {
      this.metrics.observeProviderCall(provider.name, 'error', Date.now() - started);
      if (err instanceof ProviderError) this.metrics.countProviderError(provider.name, err.code);
      // Only the provider's own trouble counts against it, not a refused input or our cancel.
      if (err instanceof ProviderError && err.retryable) {
        await this.health.record(provider.name, false, Date.now() - started).catch(() => undefined);
      }
      throw err;
    }
  }

  /** The job's place in its provider's queue, written only when it changed (it is read from the stored job). */
  private async noteQueuePosition(task: TaskEntity, position: number | undefined): Promise<void> {
    const known = task.providerJob?.queue_position;
    if ((position ?? null) === (typeof known === 'number' ? known : null)) return;
    await this.tasks.saveProviderQueuePosition(task.id, position ?? null);
  }

  private async later(job: Job, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(Date.now() + Math.max(0, delayMs), token);
    throw new DelayedError();
  }

  /** Outputs are ours (DESIGN decision 9): copied into storage before the task says completed. */
  private async finish(
    task: TaskEntity,
    provider: MediaProvider,
    { output, cost, latencyMs }: { output: ProviderOutput; cost?: Cost; latencyMs: number },
    signal: AbortSignal,
    prefix: string,
  ): Promise<void> {
    // The provider is done with it: its slot goes to the next task now, not after the outputs are copied.
    this.wake(await this.health.record(provider.name, true, latencyMs, task.id).catch(() => undefined));
    const files = output.artifacts.length
      ? await this.storage.saveArtifacts(task.id, output.artifacts, { signal, prefix })
      : [];
    signal.throwIfAborted();
    const stored = { ...output.data, files, ...(output.sandbox ? { sandbox: true } : {}) };
    const done = await this.stateMachine.complete(task.id, { output: stored, provider: provider.name, cost });
    if (done?.parentId) {
      await this.fanOut
        .partCompleted(done.parentId)
        .catch((err: Error) => this.logger.warn({ taskId: task.id }, `progress of the split task: ${err.message}`));
    }
    const cacheKey = this.cacheKeyOf(task);
    if (cacheKey) {
      if (done) await this.cache.set(cacheKey, { output: stored, provider: provider.name });
      await this.releaseLead(cacheKey, task.id);
    }
    if (!done) this.logger.log({ taskId: task.id }, 'finished after it was cancelled: result dropped');
  }

  /**
   * Runs a task waiting as a delayed job now instead of at its next look: the first in a capped provider's line when
   * a slot was freed, or one waiting for an identical task's result. Best effort, not awaited: it looks again by
   * itself anyway.
   */
  private wake(taskId: string | undefined): void {
    if (taskId) void this.queue.promoteTaskJob(taskId);
  }

  /** Ends this task's single-flight lead, and wakes the identical tasks that waited for it (delayed jobs, run now). */
  private async releaseLead(cacheKey: string, taskId: string): Promise<void> {
    for (const id of await this.cache.release(cacheKey, taskId)) this.wake(id);
  }

  /** The cache key of a task, or undefined when the cache is off or the task bypasses it. */
  private cacheKeyOf(task: TaskEntity): string | undefined {
    if (!this.cache.enabled || task.options?.cache === 'bypass') return undefined;
    return this.cache.keyOf(task.type, task.input, task.userId);
  }

  /**
   * Completes a task with an earlier identical task's result: cost 0, `cached: true`, and the files copied under this
   * task's own id (no other task's id shows). False, and nothing done, when those files are gone from storage.
   */
  private async completeFromCache(
    task: TaskEntity,
    result: CachedResult,
    prefix: string,
    signal: AbortSignal,
  ): Promise<boolean> {
    const earlier = Array.isArray(result.output.files) ? (result.output.files as StoredFile[]) : [];
    const files = await this.storage.copyFiles(earlier, task.id, { prefix, signal });
    if (!files) {
      this.logger.warn({ taskId: task.id }, 'cached result whose files are gone: running the task');
      return false;
    }
    await this.stateMachine.complete(task.id, {
      output: { ...result.output, files },
      provider: result.provider,
      cost: { amount: 0, currency: 'USD' },
      cached: true,
    });
    return true;
  }

  private async handleFailure(
    job: Job,
    task: TaskEntity,
    provider: MediaProvider | undefined,
    signal: AbortSignal,
    err: unknown,
  ): Promise<void> {
    const reason = signal.aborted ? (signal.reason as AbortReason) : undefined;
    // The job is another run's now: leave the row, the provider's slot and the cache's lead to it.
    if (reason === 'lock_lost') throw new Error('lock lost: the job is run elsewhere');
    const providerName = provider?.name;
    // An identical task waiting on this one's result may take the lead now.
    const cacheKey = this.cacheKeyOf(task);
    if (cacheKey) await this.releaseLead(cacheKey, task.id);
    if (reason === 'cancelled') {
      if (providerName) this.wake(await this.health.release(providerName, task.id).catch(() => undefined));
      return; // the row is already cancelled; the API cancelled the provider job
    }
    if (reason === 'shutdown') throw new Error('worker shut down while the task ran'); // retried by BullMQ
    if (reason === 'timeout') {
      await this.timeOut(await this.reload(task));
      throw new UnrecoverableError('timeout');
    }
    const error = toTaskError(err);
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!error.retryable || lastAttempt) {
      this.logger.warn({ taskId: task.id, code: error.code, provider: providerName }, `task failed: ${error.message}`);
      await this.stateMachine.fail(task.id, error, {
        from: [TaskStatus.Queued, TaskStatus.Processing],
        provider: providerName ?? null,
      });
      if (providerName) this.wake(await this.health.release(providerName, task.id).catch(() => undefined));
      throw new UnrecoverableError(error.message);
    }
    this.logger.warn(
      { taskId: task.id, code: error.code, attempt: job.attemptsMade + 1 },
      `retrying: ${error.message}`,
    );
    await this.stateMachine.requeue(task.id, [TaskStatus.Processing], error);
    throw err; // BullMQ applies the backoff
  }

  /** Past the type's timeout: fail, and stop the provider job if one runs (it would bill for nothing). */
  private async timeOut(task: TaskEntity): Promise<void> {
    const failed = await this.stateMachine.fail(task.id, timeoutError(this.timeouts[task.type]), {
      from: [TaskStatus.Queued, TaskStatus.Processing],
    });
    if (failed) await this.service.stop(failed, TaskStatus.Processing);
  }

  private async reload(task: TaskEntity): Promise<TaskEntity> {
    return (await this.tasks.findById(task.id)) ?? task;
  }

  /** Progress events at most once a second per task; the last value in a burst is sent when the second is up. */
  private progressReporter(taskId: string): (progress: number) => void {
    let lastSent = 0;
    let pending: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const send = (value: number) => {
      lastSent = Date.now();
      pending = undefined;
      this.stateMachine
        .progress(taskId, value)
        .catch((err: Error) => this.logger.warn({ taskId }, `progress not saved: ${err.message}`));
    };
    return (progress: number) => {
      if (!Number.isFinite(progress)) return;
      const wait = lastSent + PROGRESS_INTERVAL_MS - Date.now();
      if (wait <= 0) return send(progress);
      pending = progress;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (pending !== undefined && this.isRunning(taskId)) send(pending);
      }, wait).unref();
    };
  }
}

/** Whether `promise` settles within `ms` (a rejection counts as settled). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where the task's outputs go (see outputPrefix). Submit refuses a folder storage would not take; a task accepted
 * before that rule fails here, before a provider is paid, instead of after.
 */
function storagePrefix(task: TaskEntity): string {
  const path = task.input.path;
  const prefix = outputPrefix(typeof path === 'string' ? path : undefined);
  if (!prefix) throw ProviderError.permanent(ProviderErrorCode.InputInvalid, 'path: storage does not take this folder');
  return prefix;
}

function timeoutError(ms: number): TaskError {
  return { code: TaskErrorCode.Timeout, message: `the task ran longer than its timeout of ${Math.round(ms / 1000)} s` };
}

export function toTaskError(err: unknown): TaskError {
  if (err instanceof ProviderError) return { code: err.code, message: err.message, retryable: err.retryable };
  // Anything unclassified (a database hiccup, a bug) is retried: it may well pass next time.
  return { code: TaskErrorCode.InternalError, message: (err as Error)?.message ?? String(err), retryable: true };
}
