import { fake, stepContext, taskRow } from '../../../test/support/processing-fakes';
import { QueueGateway } from '../../queue/queue.gateway';
import { TaskEntity } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskStatus, TaskType } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { TasksService } from '../../tasks/tasks.service';
import { CollectParts, PARTS_POLL_MS } from './collect-parts.step';

const parent = taskRow({
  type: TaskType.Img2Vid,
  parts: 2,
  input: { images: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] },
});

function part(index: number, status: TaskStatus, overrides: Partial<TaskEntity> = {}): TaskEntity {
  const images = index === 0 ? [{ id: 'a' }, { id: 'b' }] : [{ id: 'c' }];
  return taskRow({
    type: TaskType.Img2Vid,
    parentId: parent.id,
    partIndex: index,
    status,
    input: { images },
    ...overrides,
  });
}

function setup(...looks: TaskEntity[][]) {
  const tasks = { findParts: jest.fn(async () => looks.shift() ?? []) };
  const stateMachine = { complete: jest.fn(async () => parent), fail: jest.fn(async () => parent) };
  const queue = { enqueueTask: jest.fn(async () => true) };
  const service = { cancelParts: jest.fn(async () => 1) };
  const step = new CollectParts(
    fake<TasksRepository>(tasks),
    fake<TaskStateMachine>(stateMachine),
    fake<QueueGateway>(queue),
    fake<TasksService>(service),
  );
  return { step, stateMachine, queue, service, ctx: stepContext(parent) };
}

describe('CollectParts', () => {
  it('links the unfinished parts to the task job and waits for them', async () => {
    const running = [part(0, TaskStatus.Completed), part(1, TaskStatus.Processing)];
    const { step, queue, stateMachine, ctx } = setup(running);
    expect(await step.run(ctx)).toEqual({ kind: 'waiting-children' });
    expect(queue.enqueueTask).toHaveBeenCalledTimes(1);
    expect(queue.enqueueTask).toHaveBeenCalledWith(running[1], {
      parent: { id: ctx.job.id, queue: ctx.job.queueQualifiedName },
    });
    expect(ctx.job.moveToWaitingChildren).toHaveBeenCalledWith('token-1');
    expect(stateMachine.complete).not.toHaveBeenCalled();
  });

  it('completes the task with its parts’ clips in input order and their costs summed', async () => {
    const done = [
      part(0, TaskStatus.Completed, {
        provider: 'runpod',
        costAmount: 0.1,
        output: { videos: [{ id: 'a' }, { id: 'b' }], files: [{ filename: 'a.mp4' }, { filename: 'b.mp4' }] },
      }),
      part(1, TaskStatus.Completed, {
        provider: 'ffmpeg',
        costAmount: 0.2,
        output: { clips: [{ id: 'c' }], files: [{ filename: 'c.mp4' }] },
      }),
    ];
    const { step, stateMachine, queue, ctx } = setup(done);
    expect(await step.run(ctx)).toEqual({ kind: 'done' });
    expect(stateMachine.complete).toHaveBeenCalledWith(parent.id, {
      output: {
        clips: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
        files: [{ filename: 'a.mp4' }, { filename: 'b.mp4' }, { filename: 'c.mp4' }],
        parts: [
          { id: done[0].id, images: 2, provider: 'runpod' },
          { id: done[1].id, images: 1, provider: 'ffmpeg' },
        ],
      },
      provider: 'runpod,ffmpeg',
      cost: { amount: 0.3, currency: 'USD' },
    });
    expect(queue.enqueueTask).not.toHaveBeenCalled();
  });

  it('fails the task with the error of a part that failed for good, and cancels the others', async () => {
    const broken = part(1, TaskStatus.Failed, {
      provider: 'runpod',
      error: { code: 'provider_error', message: 'worker crashed' },
    });
    const { step, stateMachine, service, ctx } = setup([part(0, TaskStatus.Processing), broken]);
    expect(await step.run(ctx)).toEqual({ kind: 'done' });
    expect(stateMachine.fail).toHaveBeenCalledWith(
      parent.id,
      { code: 'provider_error', message: 'part 2 of 2 (images 3–3) failed: worker crashed' },
      { from: [TaskStatus.Processing], provider: 'runpod' },
    );
    expect(service.cancelParts).toHaveBeenCalledWith(parent.id);
  });

  it('looks again later when the parts are not linked to its job (after a lost queue)', async () => {
    const running = [part(0, TaskStatus.Processing), part(1, TaskStatus.Queued)];
    const { step, ctx } = setup(running, running);
    (ctx.job.moveToWaitingChildren as jest.Mock).mockResolvedValueOnce(false);
    expect(await step.run(ctx)).toEqual({ kind: 'later', ms: PARTS_POLL_MS });
  });

  it('settles at once when the parts ended while they were being linked', async () => {
    const cancelled = part(0, TaskStatus.Cancelled);
    const { step, stateMachine, ctx } = setup(
      [part(0, TaskStatus.Processing), part(1, TaskStatus.Queued)],
      [cancelled, part(1, TaskStatus.Completed)],
    );
    (ctx.job.moveToWaitingChildren as jest.Mock).mockResolvedValueOnce(false);
    expect(await step.run(ctx)).toEqual({ kind: 'done' });
    expect(stateMachine.fail).toHaveBeenCalledWith(
      parent.id,
      expect.objectContaining({ code: 'part_cancelled' }),
      expect.anything(),
    );
  });
});
