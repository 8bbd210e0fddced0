import { Injectable, Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { lineTicket, ProviderHealthService } from '../providers/provider-health.service';
import { ProviderRegistry } from '../providers/provider.registry';
import { QueueGateway } from '../queue/queue.gateway';
import { TaskEntity, TaskError } from '../tasks/entities/task.entity';
import { taskRequestOf } from '../tasks/task-input';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { isTerminal, QUEUE_PRIORITY, TaskStatus, TaskType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { TasksService } from '../tasks/tasks.service';

/** How often a split task whose parts are not linked to its job (after a lost queue) looks at them again. */
const PARTS_POLL_MS = 2000;

/**
 * What the split step decided: run the task whole; it is over (completed, failed, or no longer processing); its job
 * waits for the parts' jobs (BullMQ's waiting-children); or it looks again after `ms`.
 */
export type FanOutStep = { kind: 'whole' } | { kind: 'done' } | { kind: 'waiting' } | { kind: 'later'; ms: number };

function imagesOf(task: Pick<TaskEntity, 'input'>): unknown[] {
  return Array.isArray(task.input.images) ? (task.input.images as unknown[]) : [];
}

function clipSeconds(image: unknown): number {
  const seconds = Number((image as { duracao?: unknown } | null)?.duracao);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 1;
}

function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/**
 * `count` contiguous, non-empty slices of `items`, in order, of about equal total `weight`: each cut falls at the
 * first item where the running total reaches its share (equal weights: sizes differ by one at most, 100 in 3: 34, 33,
 * 33).
 */
export function slices<T>(items: T[], count: number, weight: (item: T) => number = () => 1): T[][] {
  const weights = items.map((item) => Math.max(0, weight(item)));
  const total = weights.reduce((sum, w) => sum + w, 0);
  const cuts: number[] = [0];
  let running = 0;
  let i = 0;
  for (let k = 1; k < count; k++) {
    const share = (total * k) / count;
    // At least one item in this slice, and one left for each slice after it.
    const earliest = cuts[k - 1] + 1;
    const latest = items.length - (count - k);
    while (i < earliest || (i < latest && running + 1e-9 < share)) running += weights[i++];
    cuts.push(i);
  }
  cuts.push(items.length);
  return cuts.slice(1).map((end, k) => items.slice(cuts[k], end));
}

/** The clip ids of a completed part, whichever provider ran it (ffmpeg reports clips, RunPod videos). */
function clipsOf(part: TaskEntity): { id: string }[] {
  const output = part.output ?? {};
  const clips = listOf<{ id: unknown }>(output.clips);
  if (clips.length) return clips.map((c) => ({ ...c, id: String(c.id) }));
  const videos = listOf<{ id: unknown }>(output.videos);
  if (videos.length) return videos.map((v) => ({ id: String(v.id) }));
  return listOf<{ filename: string }>(output.files).map((f) => ({ id: f.filename.replace(/\.[^.]+$/, '') }));
}

/**
 * Fan-out of large img2vid tasks (DESIGN decision 5). A task of many images is split, when it first runs, into parts
 * sized to the concurrency of the provider it would run at (its cap, e.g. 3 RunPod workers: 100 images → 34, 33,
 * 33), each part a task of its own whose job is a child of the task's job (a BullMQ flow): the task's job waits,
 * the parts run, retry and fail alone, and the task's job runs again when the last part ended or one failed for
 * good. Then the clips are aggregated in input order, or the task fails with the part's error and its other parts
 * are cancelled. Parts are rows, so a lost queue loses nothing: the task's next run links them again.
 */
@Injectable()
export class FanOut {
  private readonly logger = new Logger('FanOut');

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly registry: ProviderRegistry,
    private readonly queue: QueueGateway,
    private readonly service: TasksService,
    private readonly health: ProviderHealthService,
  ) {}

  /** Cheap, no I/O: may this task be (or already be) split? */
  applies(task: TaskEntity): boolean {
    if (task.type !== TaskType.Img2Vid || task.parentId) return false;
    if (task.parts) return true;
    const min = this.config.fanout.partMinImages;
    return min > 0 && !task.providerJob && imagesOf(task).length >= 2 * min;
  }

  /** One run of a task that `applies`: split it (once), then wait for, aggregate or fail on its parts. */
  async step(task: TaskEntity, job: Job, token: string | undefined): Promise<FanOutStep> {
    if (!task.parts) {
      const plan = await this.plan(task);
      if (!plan) return { kind: 'whole' };
      const planned = plan.parts;
      if (!(await this.tasks.split(task.id, planned))) return { kind: 'done' };
      this.logger.log({ taskId: task.id, parts: planned.length }, `split into ${planned.length} parts`);
      for (const part of planned) this.stateMachine.announceCreated(part, null);
      // At a capped provider the parts take their place in its line now, before their jobs even run: a younger task
      // whose parts happen to ask first must not take the slots.
      if (this.registry.capOf(plan.provider) !== undefined) {
        const ticket = lineTicket(QUEUE_PRIORITY[task.priority], task.createdAt);
        await this.health
          .join(
            plan.provider,
            planned.map((p) => p.id),
            ticket,
          )
          .catch((err: Error) => this.logger.warn({ taskId: task.id }, `parts not put in line: ${err.message}`));
      }
    }
    const parts = await this.tasks.findParts(task.id);
    if (await this.settle(task, parts)) return { kind: 'done' };
    // Adding a part's job again is a no-op when it exists; a job lost with the queue is added, linked to this one.
    const parent = { id: job.id!, queue: job.queueQualifiedName };
    for (const part of parts) if (!isTerminal(part.status)) await this.queue.enqueueTask(part, { parent });
    if (token && (await job.moveToWaitingChildren(token))) return { kind: 'waiting' };
    // Nothing left to wait for: the parts ended while they were being linked (fast ones), or their jobs are not
    // linked to this one (after a lost queue). Look again now, then every PARTS_POLL_MS.
    if (await this.settle(task, await this.tasks.findParts(task.id))) return { kind: 'done' };
    return { kind: 'later', ms: PARTS_POLL_MS };
  }

  /** Fails the task on a part that failed for good, or completes it when every part did; false while any runs. */
  private async settle(task: TaskEntity, parts: TaskEntity[]): Promise<boolean> {
    const stopped = parts.find((p) => p.status === TaskStatus.Failed || p.status === TaskStatus.Cancelled);
    if (stopped) {
      await this.failOn(task, parts, stopped);
      return true;
    }
    if (parts.length > 0 && parts.every((p) => p.status === TaskStatus.Completed)) {
      await this.complete(task, parts);
      return true;
    }
    return false;
  }

  /** After a part completed: the task's progress is the share of its parts done (it only moves forward). */
  async partCompleted(parentId: string): Promise<void> {
    await this.stateMachine.partsProgress(parentId);
  }

  /** The parts of a task that is split now, or null when it runs whole (too few images, one slot, no provider). */
  private async plan(task: TaskEntity): Promise<{ parts: TaskEntity[]; provider: string } | null> {
    const images = imagesOf(task);
    const min = this.config.fanout.partMinImages;
    let best;
    try {
      [best] = await this.registry.route(taskRequestOf(task), task.options);
    } catch {
      return null; // no provider: the whole task fails with the router's reason
    }
    if (!best) return null;
    const capacity = this.registry.capOf(best.name) ?? this.config.fanout.uncappedParts;
    const count = Math.min(capacity, Math.floor(images.length / min));
    if (count < 2) return null;
    const now = new Date();
    const { webhook_format: _sourcesOnly, ...options } = task.options ?? {};
    // Parts of about equal work: a clip costs its seconds plus a fixed share (download, probe, encoder start).
    const parts = slices(images, count, (image) => clipSeconds(image) + 0.5).map((slice, index) =>
      TaskEntity.create({
        id: randomUUID(),
        userId: task.userId,
        type: task.type,
        input: { ...task.input, images: slice },
        priority: task.priority,
        options,
        parentId: task.id,
        partIndex: index,
        // A part queues (for a provider's slot too) as old as the task it belongs to, so the oldest task's parts
        // take freed slots first and tasks finish one after another.
        createdAt: task.createdAt,
        updatedAt: now,
      }),
    );
    return { parts, provider: best.name };
  }

  private async complete(task: TaskEntity, parts: TaskEntity[]): Promise<void> {
    const files = parts.flatMap((p) => listOf<Record<string, unknown>>(p.output?.files));
    const clips = parts.flatMap(clipsOf);
    const providers = [...new Set(parts.map((p) => p.provider).filter((p): p is string => !!p))];
    const cost = parts.reduce((sum, p) => sum + (p.costAmount ?? 0), 0);
    const output: Record<string, unknown> = {
      clips,
      files,
      parts: parts.map((p) => ({ id: p.id, images: imagesOf(p).length, provider: p.provider })),
    };
    if (parts.some((p) => p.output?.sandbox === true)) output.sandbox = true;
    await this.stateMachine.complete(task.id, {
      output,
      provider: providers.join(','),
      cost: { amount: Math.round(cost * 1e6) / 1e6, currency: 'USD' },
    });
  }

  /** A part failed for good (after its own retries) or was cancelled: so does the task, and its other parts stop. */
  private async failOn(task: TaskEntity, parts: TaskEntity[], part: TaskEntity): Promise<void> {
    const index = parts.indexOf(part);
    const first = parts.slice(0, index).reduce((n, p) => n + imagesOf(p).length, 0);
    const range = `images ${first + 1}–${first + imagesOf(part).length}`;
    const why = part.error?.message ?? part.status;
    const error: TaskError = {
      code: part.status === TaskStatus.Cancelled ? 'part_cancelled' : (part.error?.code ?? 'part_failed'),
      message: `part ${index + 1} of ${parts.length} (${range}) ${part.status}: ${why}`,
    };
    const failed = await this.stateMachine.fail(task.id, error, {
      from: [TaskStatus.Processing],
      provider: part.provider,
    });
    if (failed) await this.service.cancelParts(task.id);
  }
}
