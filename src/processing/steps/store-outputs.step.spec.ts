import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { ResultCache } from '../../cache/result-cache.service';
import { ProviderHealthService } from '../../providers/provider-health.service';
import { MediaProvider, ProviderOutput } from '../../providers/provider.port';
import { StorageService } from '../../storage/storage.service';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { WaitingTasks } from '../waiting-tasks';
import { StoreOutputs } from './store-outputs.step';

const FILE = { key: 'tasks/t/0.png', filename: '0.png', contentType: 'image/png', size: 3 };

function setup({ completes = true, parentId = null as string | null } = {}) {
  const health = { record: jest.fn(async () => 'next-in-line') };
  const storage = { saveArtifacts: jest.fn(async () => [FILE]) };
  const stateMachine = {
    complete: jest.fn(async (id: string) => (completes ? taskRow({ id, parentId }) : null)),
    partsProgress: jest.fn(async () => null),
  };
  const cache = { set: jest.fn(async () => undefined) };
  const waiting = {
    runNow: jest.fn(),
    releaseCacheLead: jest.fn(async () => undefined),
    releaseTaskCaps: jest.fn(async () => undefined),
  };
  const step = new StoreOutputs(
    fake<ProviderHealthService>(health),
    fake<StorageService>(storage),
    fake<TaskStateMachine>(stateMachine),
    fake<ResultCache>(cache),
    fake<WaitingTasks>(waiting),
  );
  return { step, health, storage, stateMachine, cache, waiting };
}

function completed(output: Partial<ProviderOutput> = {}) {
  const release = jest.fn(async () => undefined);
  const call = {
    provider: fake<MediaProvider>({ name: 'openai' }),
    output: { artifacts: [{ contentType: 'image/png', data: Buffer.from('png') }], release, ...output },
    cost: { amount: 0.04, currency: 'USD' as const },
    latencyMs: 1200,
  };
  return { call, release };
}

describe('StoreOutputs', () => {
  it('frees the slot first, copies the outputs, completes the task, and caches the result', async () => {
    const { step, health, storage, stateMachine, cache, waiting } = setup();
    const ctx = stepContext(taskRow(), { cacheKey: 'key-1', prefix: 'tasks/renders' });
    const { call, release } = completed({ data: { revised_prompt: 'a tall lighthouse' } });
    expect(await step.run(ctx, call)).toEqual({ kind: 'done' });
    expect(health.record).toHaveBeenCalledWith('openai', true, 1200, ctx.task.id);
    expect(waiting.runNow).toHaveBeenCalledWith('next-in-line');
    expect(waiting.releaseTaskCaps).toHaveBeenCalledWith(ctx.task);
    expect(storage.saveArtifacts).toHaveBeenCalledWith(ctx.task.id, call.output.artifacts, {
      signal: ctx.run.signal,
      prefix: 'tasks/renders',
    });
    const stored = { revised_prompt: 'a tall lighthouse', files: [FILE] };
    expect(stateMachine.complete).toHaveBeenCalledWith(ctx.task.id, {
      output: stored,
      provider: 'openai',
      cost: { amount: 0.04, currency: 'USD' },
    });
    expect(cache.set).toHaveBeenCalledWith('key-1', { output: stored, provider: 'openai' });
    expect(waiting.releaseCacheLead).toHaveBeenCalledWith('key-1', ctx.task.id);
    expect(release).toHaveBeenCalledTimes(1);
    expect(stateMachine.partsProgress).not.toHaveBeenCalled();
  });

  it('keeps the sandbox mark, and moves the progress of the split task a part belongs to', async () => {
    const { step, stateMachine, cache } = setup({ parentId: 'parent-1' });
    const ctx = stepContext(taskRow());
    const { call } = completed({ artifacts: [], sandbox: true });
    expect(await step.run(ctx, call)).toEqual({ kind: 'done' });
    expect(stateMachine.complete).toHaveBeenCalledWith(
      ctx.task.id,
      expect.objectContaining({
        output: { files: [], sandbox: true },
      }),
    );
    expect(stateMachine.partsProgress).toHaveBeenCalledWith('parent-1');
    expect(cache.set).not.toHaveBeenCalled(); // no cache key
  });

  it('drops the result of a task cancelled meanwhile, and still lets the identical tasks go', async () => {
    const { step, cache, waiting } = setup({ completes: false });
    const ctx = stepContext(taskRow(), { cacheKey: 'key-2' });
    expect(await step.run(ctx, completed().call)).toEqual({ kind: 'done' });
    expect(cache.set).not.toHaveBeenCalled();
    expect(waiting.releaseCacheLead).toHaveBeenCalledWith('key-2', ctx.task.id);
  });

  it('fails at the provider, storing nothing, when the run was stopped; the local files are freed anyway', async () => {
    const { step, storage, stateMachine } = setup();
    const ctx = stepContext(taskRow());
    ctx.run.abort('cancelled');
    const { call, release } = completed();
    expect(await step.run(ctx, call)).toMatchObject({ kind: 'failed', provider: 'openai' });
    expect(storage.saveArtifacts).not.toHaveBeenCalled();
    expect(stateMachine.complete).not.toHaveBeenCalled();
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('fails at the provider when storage fails', async () => {
    const { step, storage, stateMachine } = setup();
    const full = new Error('bucket unavailable');
    storage.saveArtifacts.mockRejectedValueOnce(full);
    const ctx = stepContext(taskRow());
    expect(await step.run(ctx, completed().call)).toEqual({ kind: 'failed', error: full, provider: 'openai' });
    expect(stateMachine.complete).not.toHaveBeenCalled();
  });
});
