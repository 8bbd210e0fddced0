import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { CachedResult, ResultCache } from '../../cache/result-cache.service';
import { StorageService } from '../../storage/storage.service';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { ServeFromCache, SINGLE_FLIGHT_WAIT_MS } from './serve-from-cache.step';

const EARLIER = { key: 'tasks/earlier/0.png', filename: '0.png', contentType: 'image/png', size: 3 };
const COPIED = { ...EARLIER, key: 'tasks/this/0.png' };

function setup(hit: CachedResult | null, { filesGone = false, first = true } = {}) {
  const cache = {
    get: jest.fn(async () => (hit ? { result: hit, layer: 'redis' } : null)),
    claimFirstCall: jest.fn(async (_key: string, _taskId: string, _ttlMs: number) => first),
  };
  const storage = { copyFiles: jest.fn(async () => (filesGone ? null : [COPIED])) };
  const stateMachine = { complete: jest.fn(async () => taskRow()) };
  const step = new ServeFromCache(
    fake<ResultCache>(cache),
    fake<StorageService>(storage),
    fake<TaskStateMachine>(stateMachine),
  );
  return { step, cache, storage, stateMachine };
}

const result: CachedResult = { output: { files: [EARLIER], seed: 7 }, provider: 'openai' };

describe('ServeFromCache', () => {
  it('completes the task with an earlier identical result: its own copy of the files, at no cost', async () => {
    const { step, cache, storage, stateMachine } = setup(result);
    const ctx = stepContext(taskRow(), { prefix: 'tasks/renders' });
    expect(await step.run(ctx, 'key-1')).toEqual({ kind: 'done' });
    expect(storage.copyFiles).toHaveBeenCalledWith([EARLIER], ctx.task.id, {
      prefix: 'tasks/renders',
      signal: ctx.run.signal,
    });
    expect(stateMachine.complete).toHaveBeenCalledWith(ctx.task.id, {
      output: { files: [COPIED], seed: 7 },
      provider: 'openai',
      cost: { amount: 0, currency: 'USD' },
      cached: true,
    });
    expect(cache.claimFirstCall).not.toHaveBeenCalled();
  });

  it('submits the task when nothing is cached and no identical task is in flight', async () => {
    const { step, cache, stateMachine } = setup(null);
    const ctx = stepContext(taskRow());
    expect(await step.run(ctx, 'key-1')).toEqual({ kind: 'next', step: { kind: 'submit' } });
    // The claim lapses at the task's deadline if this worker dies.
    const [[key, taskId, ttl]] = cache.claimFirstCall.mock.calls;
    expect([key, taskId]).toEqual(['key-1', ctx.task.id]);
    expect(ttl).toBeGreaterThan(59_000);
    expect(stateMachine.complete).not.toHaveBeenCalled();
  });

  it('runs the task when the cached files are gone from storage', async () => {
    const { step, stateMachine } = setup(result, { filesGone: true });
    expect(await step.run(stepContext(taskRow()), 'key-1')).toEqual({ kind: 'next', step: { kind: 'submit' } });
    expect(stateMachine.complete).not.toHaveBeenCalled();
  });

  it('waits for the identical task in flight instead of calling the provider again', async () => {
    const { step } = setup(null, { first: false });
    expect(await step.run(stepContext(taskRow()), 'key-1')).toEqual({ kind: 'later', ms: SINGLE_FLIGHT_WAIT_MS });
  });
});
