import sharp from 'sharp';
import {
  MediaProvider,
  PollOutcome,
  ProviderContext,
  ProviderError,
  ProviderJobRef,
  ProviderRun,
  StartOutcome,
} from '../../src/providers/provider.port';
import { TaskRequest } from '../../src/tasks/task-input';
import { TaskType } from '../../src/tasks/task.enums';

/** What the processor hands an adapter, built by hand for adapter specs. */
export function ctxFor<R extends TaskRequest>(task: R): R & ProviderRun {
  return { ...task, taskId: 'task-1', signal: new AbortController().signal, reportProgress: jest.fn() };
}

/** The ProviderError a call rejects with (fails the test if it resolves or rejects with anything else). */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

/** Starts an async job, failing if the adapter answered synchronously. */
export async function submitAsync<T extends TaskType>(adapter: MediaProvider<T>, task: TaskRequest<T>) {
  const ctx = ctxFor(task);
  const started = await adapter.start(ctx);
  if (started.kind !== 'submitted') throw new Error(`${adapter.name} jobs are asynchronous`);
  return { ctx, job: started.job, pollAfterMs: started.pollAfterMs };
}

/** Polls until the job leaves "running" (at most `max` times, ignoring pollAfterMs), returning every outcome. */
export async function pollToEnd<T extends TaskType>(
  adapter: MediaProvider<T>,
  ctx: ProviderContext<T>,
  job: ProviderJobRef,
  max = 10,
): Promise<PollOutcome[]> {
  const outcomes: PollOutcome[] = [];
  for (let i = 0; i < max; i++) {
    const outcome = await adapter.poll(ctx, job);
    outcomes.push(outcome);
    if (outcome.kind === 'completed') return outcomes;
  }
  throw new Error(`still running after ${max} polls`);
}

/** A plain-coloured PNG of the given size as a base64 data: URL (an image input for the image adapters). */
export async function pngDataUrl(width: number, height: number, colour = '#264653'): Promise<string> {
  const png = await sharp({ create: { width, height, channels: 3, background: colour } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** The outcome of a start that must complete at once. */
export async function completed(outcome: Promise<StartOutcome>) {
  const result = await outcome;
  if (result.kind !== 'completed') throw new Error(`expected completed, got ${result.kind}`);
  return result;
}
