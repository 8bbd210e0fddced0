import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { AppConfig } from '../../config/app-config';
import { ProviderHealthService } from '../../providers/provider-health.service';
import { MediaProvider, ProviderError, StartOutcome } from '../../providers/provider.port';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TasksRepository } from '../../tasks/tasks.repository';
import { ProviderCalls } from '../provider-calls';
import { WaitingTasks } from '../waiting-tasks';
import { SubmitTask } from './submit-task.step';

type Admission = 'admitted' | 'circuit_open' | 'capped';

function provider(name: string, start: () => Promise<StartOutcome>): MediaProvider {
  return fake<MediaProvider>({ name, start: jest.fn(start) });
}

function setup(
  candidates: MediaProvider[],
  admissions: Record<string, Admission> = {},
  ctx = stepContext(taskRow()),
  taskCaps: { key: string; cap: number }[] = [],
) {
  const health = {
    admit: jest.fn(async (name: string, _taskId?: string, _cap?: number) => admissions[name] ?? 'admitted'),
  };
  const waiting = {
    releaseSlot: jest.fn(async () => undefined),
    releaseTaskCaps: jest.fn(async () => undefined),
    leaveLines: jest.fn(async () => undefined),
  };
  const tasks = { saveProviderJob: jest.fn(async () => undefined) };
  const registry = {
    route: jest.fn(async () => candidates),
    capOf: jest.fn(() => 2),
    taskCapsOf: jest.fn(() => taskCaps),
  };
  const calls = fake<ProviderCalls>({
    timed: async (_p: MediaProvider, call: () => Promise<StartOutcome>) => ({ ...(await call()), latencyMs: 7 }),
  });
  const step = new SubmitTask(
    fake<AppConfig>({ providerPollScale: 0.5 }),
    fake<ProviderRegistry>(registry),
    fake<ProviderHealthService>(health),
    calls,
    fake<WaitingTasks>(waiting),
    fake<TasksRepository>(tasks),
  );
  return { step, health, waiting, tasks, ctx };
}

const submitted = async (): Promise<StartOutcome> => ({ kind: 'submitted', job: { id: 'job-1' }, pollAfterMs: 2000 });

describe('SubmitTask', () => {
  it('stores an async provider job and polls it after the scaled delay', async () => {
    const runway = provider('runway', submitted);
    const { step, tasks, ctx } = setup([runway]);
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 1000 });
    expect(tasks.saveProviderJob).toHaveBeenCalledWith(ctx.task.id, 'runway', { id: 'job-1' });
  });

  it('goes on to store the outputs when the provider answers at once', async () => {
    const output = { artifacts: [] };
    const openai = provider('openai', async () => ({ kind: 'completed', output }));
    const { step, tasks, ctx } = setup([openai]);
    expect(await step.run(ctx)).toEqual({
      kind: 'next',
      step: { kind: 'store', call: { provider: openai, kind: 'completed', output, latencyMs: 7 } },
    });
    expect(tasks.saveProviderJob).not.toHaveBeenCalled();
  });

  it('skips a provider whose circuit is open, and one at its cap, for the next candidate', async () => {
    const a = provider('a', submitted);
    const b = provider('b', submitted);
    const c = provider('c', submitted);
    const { step, health, tasks, ctx } = setup([a, b, c], { a: 'circuit_open', b: 'capped' });
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 1000 });
    expect(health.admit.mock.calls.map(([name]) => name)).toEqual(['a', 'b', 'c']);
    expect([a.start, b.start, c.start].map((s) => (s as jest.Mock).mock.calls.length)).toEqual([0, 0, 1]);
    expect(tasks.saveProviderJob).toHaveBeenCalledWith(ctx.task.id, 'c', { id: 'job-1' });
  });

  it('leaves the line of a capped provider it passed once another admits it; keeps it while it waits', async () => {
    const { step, waiting, ctx } = setup([provider('a', submitted), provider('b', submitted)], { a: 'capped' });
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 1000 });
    expect(waiting.releaseSlot.mock.calls).toEqual([['a', ctx.task.id]]);
    const all = setup([provider('a', submitted), provider('b', submitted)], { a: 'capped', b: 'capped' });
    expect(await all.step.run(all.ctx)).toEqual({ kind: 'later', ms: 500 });
    expect(all.waiting.releaseSlot).not.toHaveBeenCalled();
    expect(all.waiting.leaveLines).not.toHaveBeenCalled();
  });

  it('keeps no place in a line when the task was cancelled while it asked for a slot', async () => {
    const ctx = stepContext(taskRow());
    const { step, health, waiting } = setup([provider('a', submitted)], { a: 'capped' }, ctx);
    health.admit.mockImplementationOnce(async () => {
      ctx.run.abort('cancelled');
      return 'capped';
    });
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 500 });
    expect(waiting.leaveLines).toHaveBeenCalledWith(ctx.task);
    // A run whose lock lapsed keeps it: the task runs on at another worker, which may hold a slot under its id.
    const lost = stepContext(taskRow());
    const other = setup([provider('a', submitted)], { a: 'capped' }, lost);
    other.health.admit.mockImplementationOnce(async () => {
      lost.run.abort('lock_lost');
      return 'capped';
    });
    expect(await other.step.run(lost)).toEqual({ kind: 'later', ms: 500 });
    expect(other.waiting.leaveLines).not.toHaveBeenCalled();
  });

  it('waits, holding no worker slot, when every candidate is capped', async () => {
    const { step, ctx } = setup([provider('a', submitted), provider('b', submitted)], { a: 'capped', b: 'capped' });
    // CAPPED_RETRY_MS scaled by PROVIDER_POLL_SCALE (0.5).
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 500 });
  });

  it('fails as transient when the only candidates are cooling down', async () => {
    const { step, ctx } = setup([provider('a', submitted)], { a: 'circuit_open' });
    const outcome = await step.run(ctx);
    expect(outcome).toMatchObject({ kind: 'failed', error: { code: 'circuit_open', retryable: true } });
    expect(outcome).not.toHaveProperty('provider', 'a');
  });

  it('falls back to the next provider on a transient failure, freeing the slot it held', async () => {
    const flaky = provider('flaky', () => Promise.reject(ProviderError.transient('provider_unavailable', '503')));
    const steady = provider('steady', submitted);
    const { step, waiting, ctx } = setup([flaky, steady]);
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 1000 });
    expect(waiting.releaseSlot).toHaveBeenCalledWith('flaky', ctx.task.id);
  });

  it('fails at the provider on a permanent failure, without trying the others', async () => {
    const refused = ProviderError.permanent('input_invalid', 'prompt: too long');
    const strict = provider('strict', () => Promise.reject(refused));
    const other = provider('other', submitted);
    const { step, waiting, ctx } = setup([strict, other]);
    expect(await step.run(ctx)).toEqual({ kind: 'failed', error: refused, provider: 'strict' });
    expect(other.start).not.toHaveBeenCalled();
    expect(waiting.releaseSlot).toHaveBeenCalledWith('strict', ctx.task.id);
  });

  it('fails at the provider when the run was stopped during the call, even on a transient error', async () => {
    const ctx = stepContext(taskRow());
    const stopped = provider('slow', () => {
      ctx.run.abort('cancelled');
      return Promise.reject(ProviderError.transient('timeout', 'aborted'));
    });
    const other = provider('other', submitted);
    const { step } = setup([stopped, other], {}, ctx);
    expect(await step.run(ctx)).toMatchObject({ kind: 'failed', provider: 'slow' });
    expect(other.start).not.toHaveBeenCalled();
  });

  describe('task caps (an image operation’s, whatever the provider)', () => {
    const stencilCap = [{ key: 'image_edit:stencil', cap: 5 }];

    it('asks for the task cap before the provider’s, and keeps its slot while the provider runs the task', async () => {
      const local = provider('image-local', submitted);
      const { step, health, waiting, ctx } = setup([local], {}, stepContext(taskRow()), stencilCap);
      expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 1000 });
      expect(health.admit.mock.calls.map(([name, , cap]) => [name, cap])).toEqual([
        ['image_edit:stencil', 5],
        ['image-local', 2],
      ]);
      expect(waiting.releaseTaskCaps).not.toHaveBeenCalled();
    });

    it('waits in the cap’s line at a full task cap, without asking any provider', async () => {
      const local = provider('image-local', submitted);
      const capped = { 'image_edit:stencil': 'capped' as const };
      const { step, health, waiting, ctx } = setup([local], capped, stepContext(taskRow()), stencilCap);
      expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 500 });
      expect(health.admit).toHaveBeenCalledTimes(1);
      expect(local.start).not.toHaveBeenCalled();
      // Its place in the line it waits in is kept.
      expect(waiting.releaseTaskCaps).toHaveBeenCalledWith(ctx.task, 'image_edit:stencil');
    });

    it('gives the task cap’s slot back when no provider started the task', async () => {
      const { step, waiting, ctx } = setup(
        [provider('a', submitted)],
        { a: 'capped' },
        stepContext(taskRow()),
        stencilCap,
      );
      expect(await step.run(ctx)).toEqual({ kind: 'later', ms: 500 });
      expect(waiting.releaseTaskCaps).toHaveBeenCalledWith(ctx.task);
      const refused = provider('b', () => Promise.reject(ProviderError.permanent('input_invalid', 'broken')));
      const failing = setup([refused], {}, stepContext(taskRow()), stencilCap);
      expect(await failing.step.run(failing.ctx)).toMatchObject({ kind: 'failed', provider: 'b' });
      expect(failing.waiting.releaseTaskCaps).toHaveBeenCalledWith(failing.ctx.task);
    });
  });

  it('does not store a provider job for a run stopped as the provider answered', async () => {
    const ctx = stepContext(taskRow());
    const answering = provider('runway', async () => {
      ctx.run.abort('cancelled');
      return submitted();
    });
    const { step, tasks } = setup([answering], {}, ctx);
    expect(await step.run(ctx)).toMatchObject({ kind: 'failed', provider: 'runway' });
    expect(tasks.saveProviderJob).not.toHaveBeenCalled();
  });
});
