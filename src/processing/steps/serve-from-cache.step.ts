import { Injectable, Logger } from '@nestjs/common';
import { CachedResult, ResultCache } from '../../cache/result-cache.service';
import { StorageService, StoredFile } from '../../storage/storage.service';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { DONE, later, next, StepOutcome } from './step-outcome';
import { StepContext } from './step-context';

/**
 * How long a task waits for an identical one in flight before it looks at the cache again, if it is not run sooner
 * (the task that called the provider runs the waiting ones when it ends; this covers a call that came too early or
 * was lost).
 */
export const SINGLE_FLIGHT_WAIT_MS = 1000;

/**
 * An identical task finished earlier: its result, at no cost. One identical task in flight already: wait for its
 * result instead of calling the provider again (no worker slot held meanwhile). Otherwise this task is the one that
 * calls the provider: submit it.
 */
@Injectable()
export class ServeFromCache {
  private readonly logger = new Logger('ServeFromCache');

  constructor(
    private readonly cache: ResultCache,
    private readonly storage: StorageService,
    private readonly stateMachine: TaskStateMachine,
  ) {}

  async run(ctx: StepContext, cacheKey: string): Promise<StepOutcome> {
    const hit = await this.cache.get(cacheKey);
    if (hit && (await this.complete(ctx, hit.result))) return DONE;
    const first = await this.cache.claimFirstCall(cacheKey, ctx.task.id, ctx.run.deadline - Date.now());
    return first ? next({ kind: 'submit' }) : later(SINGLE_FLIGHT_WAIT_MS);
  }

  /**
   * Completes the task with the earlier task's result: cost 0, `cached: true`, and the files copied under this task's
   * own id (no other task's id shows). False, and nothing done, when those files are gone from storage.
   */
  private async complete({ task, prefix, run }: StepContext, result: CachedResult): Promise<boolean> {
    const earlier = Array.isArray(result.output.files) ? (result.output.files as StoredFile[]) : [];
    const files = await this.storage.copyFiles(earlier, task.id, { prefix, signal: run.signal });
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
}
