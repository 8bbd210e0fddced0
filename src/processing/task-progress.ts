import { Injectable, Logger } from '@nestjs/common';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { TaskRuns } from './task-runs';

/** At most one progress event a second per task. */
export const PROGRESS_INTERVAL_MS = 1000;

/**
 * A progress callback that sends at most once per `intervalMs`; the last value of a burst is sent when the interval
 * is up, if `stillWanted()` then (the run may have ended meanwhile). Non-finite values are ignored.
 */
export function throttledProgress(
  send: (progress: number) => void,
  stillWanted: () => boolean,
  intervalMs = PROGRESS_INTERVAL_MS,
): (progress: number) => void {
  let lastSent = 0;
  let pending: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const sendNow = (value: number) => {
    lastSent = Date.now();
    pending = undefined;
    send(value);
  };
  return (progress: number) => {
    if (!Number.isFinite(progress)) return;
    const wait = lastSent + intervalMs - Date.now();
    if (wait <= 0) return sendNow(progress);
    pending = progress;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (pending !== undefined && stillWanted()) sendNow(pending);
    }, wait).unref();
  };
}

/** The progress callbacks handed to providers: saved (and announced) through the state machine, throttled. */
@Injectable()
export class TaskProgress {
  private readonly logger = new Logger('TaskProgress');

  constructor(
    private readonly stateMachine: TaskStateMachine,
    private readonly runs: TaskRuns,
  ) {}

  reporterFor(taskId: string): (progress: number) => void {
    return throttledProgress(
      (value) =>
        void this.stateMachine
          .progress(taskId, value)
          .catch((err: Error) => this.logger.warn({ taskId }, `progress not saved: ${err.message}`)),
      () => this.runs.isRunning(taskId),
    );
  }
}
