import { Injectable, Logger } from '@nestjs/common';

/** Why a run was stopped: the API cancelled the task, it ran past its timeout, the worker shuts down, or its lock lapsed. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown' | 'lock_lost';

/** One run of a task job in this process: the lock token BullMQ gave it, and the signal that stops it. */
export class TaskRun {
  private readonly controller = new AbortController();

  constructor(
    readonly taskId: string,
    readonly token: string | undefined,
    /** When the task must be done by (ms since the epoch). */
    readonly deadline: number,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why it was stopped, or undefined while it runs. */
  get abortReason(): AbortReason | undefined {
    return this.signal.aborted ? (this.signal.reason as AbortReason) : undefined;
  }

  abort(reason: AbortReason): void {
    this.controller.abort(reason);
  }
}

/**
 * The task runs in progress in this process, so that a cancel, a lapsed lock or a shutdown can stop them, and so
 * that a run is stopped when it passes its task's deadline.
 */
@Injectable()
export class TaskRuns {
  private readonly logger = new Logger('TaskRuns');
  private readonly runs = new Map<TaskRun, NodeJS.Timeout>();

  get size(): number {
    return this.runs.size;
  }

  /** A new run of `taskId`; an older run of it here has lost its lock (BullMQ hands a job to one holder at a time). */
  begin(taskId: string, token: string | undefined, deadline: number): TaskRun {
    this.abort(taskId, 'lock_lost');
    const run = new TaskRun(taskId, token, deadline);
    this.runs.set(
      run,
      setTimeout(() => run.abort('timeout'), Math.max(0, deadline - Date.now())),
    );
    return run;
  }

  end(run: TaskRun): void {
    clearTimeout(this.runs.get(run));
    this.runs.delete(run);
  }

  abort(taskId: string, reason: AbortReason): void {
    for (const run of this.runs.keys()) if (run.taskId === taskId) run.abort(reason);
  }

  abortAll(reason: AbortReason): void {
    for (const run of this.runs.keys()) run.abort(reason);
  }

  /** Whether a run of this task is in progress here and not stopped. */
  isRunning(taskId: string): boolean {
    for (const run of this.runs.keys()) if (run.taskId === taskId && !run.signal.aborted) return true;
    return false;
  }

  /**
   * Stops the runs whose lock BullMQ could not renew (an event loop stalled or Redis away for longer than the lock),
   * so a job taken back and run again elsewhere is not also run on here: its provider calls stop. The lock's holder
   * (`readLock`) tells an older run of a job from a newer one; when it cannot be read, every run of the job stops.
   */
  async lockLost(jobIds: string[], readLock: (jobId: string) => Promise<string | null | undefined>): Promise<void> {
    for (const jobId of jobIds) {
      const runs = [...this.runs.keys()].filter((run) => run.taskId === jobId);
      if (!runs.length) continue;
      const holder = await readLock(jobId).catch(() => undefined);
      for (const run of runs) {
        if (run.token !== undefined && run.token === holder) continue;
        this.logger.warn({ taskId: jobId }, 'lock lost (the job may run elsewhere): run stopped');
        run.abort('lock_lost');
      }
    }
  }
}
