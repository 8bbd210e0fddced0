import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { AppConfig } from '../../config/app-config';
import { MediaProvider, PollOutcome, ProviderError } from '../../providers/provider.port';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TasksRepository } from '../../tasks/tasks.repository';
import { ProviderCalls } from '../provider-calls';
import { PollTask } from './poll-task.step';

function setup(poll: () => Promise<PollOutcome>, known = true) {
  const runway = fake<MediaProvider>({ name: 'runway', poll: jest.fn(poll) });
  const tasks = { saveProviderQueuePosition: jest.fn(async () => undefined) };
  const step = new PollTask(
    fake<AppConfig>({ providerPollScale: 0.1 }),
    fake<ProviderRegistry>({ get: (name: string) => (known && name === 'runway' ? runway : undefined) }),
    fake<ProviderCalls>({
      timed: async (_p: MediaProvider, call: () => Promise<PollOutcome>) => ({ ...(await call()), latencyMs: 3 }),
    }),
    fake<TasksRepository>(tasks),
  );
  const task = taskRow({ provider: 'runway', providerJob: { id: 'job-1', queue_position: 4 } });
  return { step, runway, tasks, ctx: stepContext(task) };
}

describe('PollTask', () => {
  it('reports progress and a changed queue position while the job runs, and looks again later', async () => {
    const { step, runway, tasks, ctx } = setup(async () => ({
      kind: 'running',
      progress: 0.4,
      queuePosition: 2,
      pollAfterMs: 3000,
    }));
    expect(await step.run(ctx, 'runway', { id: 'job-1' })).toEqual({ kind: 'later', ms: 300 });
    expect(runway.poll).toHaveBeenCalledWith(ctx.call, { id: 'job-1' });
    expect(ctx.call.reportProgress).toHaveBeenCalledWith(0.4);
    expect(tasks.saveProviderQueuePosition).toHaveBeenCalledWith(ctx.task.id, 2);
  });

  it('writes the queue position only when it changed', async () => {
    const { step, tasks, ctx } = setup(async () => ({ kind: 'running', queuePosition: 4, pollAfterMs: 1000 }));
    await step.run(ctx, 'runway', { id: 'job-1' });
    expect(tasks.saveProviderQueuePosition).not.toHaveBeenCalled();
    expect(ctx.call.reportProgress).not.toHaveBeenCalled();
    // Gone from the provider's queue (running now): cleared.
    const gone = setup(async () => ({ kind: 'running', pollAfterMs: 1000 }));
    await gone.step.run(gone.ctx, 'runway', { id: 'job-1' });
    expect(gone.tasks.saveProviderQueuePosition).toHaveBeenCalledWith(gone.ctx.task.id, null);
  });

  it('goes on to store the outputs when the job is done', async () => {
    const output = { artifacts: [{ contentType: 'video/mp4', url: 'https://cdn.example/v.mp4' }] };
    const { step, runway, ctx } = setup(async () => ({ kind: 'completed', output }));
    expect(await step.run(ctx, 'runway', { id: 'job-1' })).toEqual({
      kind: 'next',
      step: { kind: 'store', call: { provider: runway, kind: 'completed', output, latencyMs: 3 } },
    });
  });

  it('fails at the provider when the poll fails, or when the run was stopped meanwhile', async () => {
    const outage = ProviderError.transient('provider_unavailable', '502');
    const { step, ctx } = setup(() => Promise.reject(outage));
    expect(await step.run(ctx, 'runway', { id: 'job-1' })).toEqual({
      kind: 'failed',
      error: outage,
      provider: 'runway',
    });
    const stopped = setup(async () => ({ kind: 'running', progress: 0.9, pollAfterMs: 1000 }));
    stopped.ctx.run.abort('timeout');
    expect(await stopped.step.run(stopped.ctx, 'runway', { id: 'job-1' })).toMatchObject({
      kind: 'failed',
      provider: 'runway',
    });
    expect(stopped.ctx.call.reportProgress).not.toHaveBeenCalled();
  });

  it('starts the task again when its provider is no longer configured', async () => {
    const { step, runway, ctx } = setup(async () => ({ kind: 'running', pollAfterMs: 1000 }), false);
    expect(await step.run(ctx, 'runway', { id: 'job-1' })).toEqual({ kind: 'next', step: { kind: 'submit' } });
    expect(await step.run({ ...ctx, cacheKey: 'k' }, 'runway', { id: 'job-1' })).toEqual({
      kind: 'next',
      step: { kind: 'cached', cacheKey: 'k' },
    });
    expect(runway.poll).not.toHaveBeenCalled();
  });
});
