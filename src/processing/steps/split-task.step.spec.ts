import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { AppConfig } from '../../config/app-config';
import { ProviderHealthService } from '../../providers/provider-health.service';
import { MediaProvider } from '../../providers/provider.port';
import { ProviderRegistry } from '../../providers/provider.registry';
import { TaskEntity } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskPriority, TaskType } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { SplitTask } from './split-task.step';

const images = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `img-${i}`, duracao: 2 }));

function setup({
  cap = 3,
  routed = true,
  splits = true,
}: { cap?: number | null; routed?: boolean; splits?: boolean } = {}) {
  const runpod = fake<MediaProvider>({ name: 'runpod' });
  const registry = {
    route: jest.fn(async () => {
      if (!routed) throw new Error('no provider can run this img2vid task');
      return [runpod];
    }),
    capOf: jest.fn(() => cap ?? undefined),
  };
  const health = { join: jest.fn(async () => undefined) };
  const tasks = { split: jest.fn(async (_id: string, _parts: TaskEntity[]) => splits) };
  const stateMachine = { announceCreated: jest.fn() };
  const step = new SplitTask(
    fake<AppConfig>({ fanout: { partMinImages: 10, uncappedParts: 4 } }),
    fake<ProviderRegistry>(registry),
    fake<ProviderHealthService>(health),
    fake<TasksRepository>(tasks),
    fake<TaskStateMachine>(stateMachine),
  );
  const task = taskRow({
    type: TaskType.Img2Vid,
    input: { images: images(100) },
    priority: TaskPriority.High,
    options: { webhook_format: 'sources' },
  });
  return { step, health, tasks, stateMachine, ctx: stepContext(task) };
}

describe('SplitTask', () => {
  it("splits the task into parts sized to the provider's cap, announces them, and puts them in its line", async () => {
    const { step, health, tasks, stateMachine, ctx } = setup();
    expect(await step.run(ctx)).toEqual({ kind: 'next', step: { kind: 'collect' } });
    const parts = tasks.split.mock.calls[0][1];
    expect(parts.map((p) => (p.input.images as unknown[]).length)).toEqual([34, 33, 33]);
    expect(parts.map((p) => [p.parentId, p.partIndex, p.priority, p.createdAt])).toEqual([
      [ctx.task.id, 0, TaskPriority.High, ctx.task.createdAt],
      [ctx.task.id, 1, TaskPriority.High, ctx.task.createdAt],
      [ctx.task.id, 2, TaskPriority.High, ctx.task.createdAt],
    ]);
    // The sources' webhook format is the task's, not its parts' (they send no webhooks of their own).
    expect(parts.every((p) => p.options.webhook_format === undefined)).toBe(true);
    expect(stateMachine.announceCreated).toHaveBeenCalledTimes(3);
    expect(health.join).toHaveBeenCalledWith(
      'runpod',
      parts.map((p) => p.id),
      expect.any(Number),
    );
  });

  it('makes FANOUT_UNCAPPED_PARTS parts at a provider without a cap, and puts them in no line', async () => {
    const { step, health, tasks, ctx } = setup({ cap: null });
    await step.run(ctx);
    expect(tasks.split.mock.calls[0][1]).toHaveLength(4);
    expect(health.join).not.toHaveBeenCalled();
  });

  it('runs the task whole when it would make one part, or no provider can run it', async () => {
    const single = setup({ cap: 1 });
    expect(await single.step.run(single.ctx)).toEqual({ kind: 'next', step: { kind: 'submit' } });
    const unrouted = setup({ routed: false });
    expect(await unrouted.step.run({ ...unrouted.ctx, cacheKey: 'k' })).toEqual({
      kind: 'next',
      step: { kind: 'cached', cacheKey: 'k' },
    });
    expect(single.tasks.split).not.toHaveBeenCalled();
    expect(unrouted.tasks.split).not.toHaveBeenCalled();
  });

  it('ends the run when the task can no longer be split (cancelled meanwhile)', async () => {
    const { step, stateMachine, health, ctx } = setup({ splits: false });
    expect(await step.run(ctx)).toEqual({ kind: 'done' });
    expect(stateMachine.announceCreated).not.toHaveBeenCalled();
    expect(health.join).not.toHaveBeenCalled();
  });
});
