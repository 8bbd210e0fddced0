import { Injectable } from '@nestjs/common';
import { ResultCache } from '../cache/result-cache.service';
import { ProviderHealthService } from '../providers/provider-health.service';
import { ProviderRegistry } from '../providers/provider.registry';
import { TaskType } from '../tasks/task.enums';
import { QueueGateway } from '../queue/queue.gateway';

/**
 * Tasks waiting, as delayed jobs, for something another task holds: a slot at a capped provider, or the result of an
 * identical task in flight. When the holder lets go, the task that is next to get it runs now instead of at its next
 * look. Best effort, not awaited: a waiting task looks again by itself anyway.
 */
@Injectable()
export class WaitingTasks {
  constructor(
    private readonly health: ProviderHealthService,
    private readonly cache: ResultCache,
    private readonly queue: QueueGateway,
    private readonly registry: ProviderRegistry,
  ) {}

  /** Runs the delayed job of this task now (the task next to get what was just freed), if there is one. */
  runNow(taskId: string | undefined): void {
    if (taskId) void this.queue.promoteTaskJob(taskId);
  }

  /** Frees the task's slot at the provider; the task waiting longest for one there (by priority, then age) runs now. */
  async releaseSlot(provider: string, taskId: string): Promise<void> {
    this.runNow(await this.health.release(provider, taskId).catch(() => undefined));
  }

  /**
   * Frees the task's slots under its task caps (ProviderRegistry.taskCapsOf: an image operation's, whatever the
   * provider), or its places in their lines, but for the one it waits at; the task first in each line runs now.
   */
  async releaseTaskCaps(
    task: { id: string; type: TaskType; input: Record<string, unknown> },
    /** Where the task stays in line: the cap it waits for keeps its place. */
    waitingAt?: string,
  ): Promise<void> {
    for (const { key } of this.registry.taskCapsOf(task)) {
      if (key !== waitingAt) await this.releaseSlot(key, task.id);
    }
  }

  /**
   * A task that ended while it may still stand in a line (a run that was asking for a slot as the task was cancelled
   * put it back): it leaves every line it may stand in (ProviderRegistry.linesOf), and whoever is first there now runs.
   */
  async leaveLines(task: { id: string; type: TaskType; input: Record<string, unknown>; provider: string | null }) {
    for (const id of await this.registry.leaveLines(task)) this.runNow(id);
  }

  /**
   * Gives up the task's claim to be the one identical task that calls a provider; the identical tasks that waited for
   * its result run now (they find the result in the cache, or one of them calls the provider).
   */
  async releaseCacheLead(cacheKey: string, taskId: string): Promise<void> {
    for (const id of await this.cache.releaseFirstCall(cacheKey, taskId)) this.runNow(id);
  }
}
