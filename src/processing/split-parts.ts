import { randomUUID } from 'node:crypto';
import { TaskEntity, TaskError } from '../tasks/entities/task.entity';
import { CompletionResult } from '../tasks/task-state-machine';
import { TaskStatus } from '../tasks/task.enums';

/*
 * Fan-out of large img2vid tasks (DESIGN decision 5), the parts' arithmetic. A task of many images is split, when it
 * first runs, into parts sized to the concurrency of the provider it would run at (its cap, e.g. 3 RunPod workers:
 * 100 images → 34, 33, 33), each part a task of its own. The clips are aggregated in input order; a part that fails
 * fails the task with the part's error. The steps that split a task and collect its parts are under steps/.
 */

export function imagesOf(task: Pick<TaskEntity, 'input'>): unknown[] {
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

/**
 * The parts of a task, `capacity` at most and `minImages` images each at least; empty when it runs whole (fewer than
 * two parts).
 */
export function planParts(task: TaskEntity, capacity: number, minImages: number, now = new Date()): TaskEntity[] {
  const images = imagesOf(task);
  const count = Math.min(capacity, Math.floor(images.length / minImages));
  if (count < 2) return [];
  const { webhook_format: _sourcesOnly, ...options } = task.options ?? {};
  // Parts of about equal work: a clip costs its seconds plus a fixed share (download, probe, encoder start).
  return slices(images, count, (image) => clipSeconds(image) + 0.5).map((slice, index) =>
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

/** The result of a split task whose parts all completed: their clips and files in input order, their costs summed. */
export function combinedResult(parts: TaskEntity[]): CompletionResult {
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
  return {
    output,
    provider: providers.join(','),
    cost: { amount: Math.round(cost * 1e6) / 1e6, currency: 'USD' },
  };
}

/** The error of a split task one of whose parts failed for good or was cancelled: which part, which images, why. */
export function partError(parts: TaskEntity[], part: TaskEntity): TaskError {
  const index = parts.indexOf(part);
  const first = parts.slice(0, index).reduce((n, p) => n + imagesOf(p).length, 0);
  const range = `images ${first + 1}–${first + imagesOf(part).length}`;
  const why = part.error?.message ?? part.status;
  return {
    code: part.status === TaskStatus.Cancelled ? 'part_cancelled' : (part.error?.code ?? 'part_failed'),
    message: `part ${index + 1} of ${parts.length} (${range}) ${part.status}: ${why}`,
  };
}
