import { UnrecoverableError } from 'bullmq';
import { fake, stepContext, taskJob, taskRow } from '../../../test/support/processing-fakes';
import { ProviderError } from '../../providers/provider.port';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskStatus } from '../../tasks/task.enums';
import { TasksRepository } from '../../tasks/tasks.repository';
import { AbortReason } from '../task-runs';
import { WaitingTasks } from '../waiting-tasks';
import { FailTask } from './fail-task.step';
import { TimeOutTask } from './time-out-task.step';

function setup({ attemptsMade = 0, attempts = 3, stoppedBy = undefined as AbortReason | undefined } = {}) {
  const stateMachine = { fail: jest.fn(async () => taskRow()), requeue: jest.fn(async () => taskRow()) };
  const reloaded = taskRow({ status: TaskStatus.Processing });
  const tasks = { findById: jest.fn(async () => reloaded) };
  const waiting = {
    releaseSlot: jest.fn(async () => undefined),
    releaseCacheLead: jest.fn(async () => undefined),
    releaseTaskCaps: jest.fn(async () => undefined),
  };
  const timeOut = { run: jest.fn(async () => undefined) };
  const step = new FailTask(
    fake<TaskStateMachine>(stateMachine),
    fake<TasksRepository>(tasks),
    fake<WaitingTasks>(waiting),
    fake<TimeOutTask>(timeOut),
  );
  const task = taskRow();
  const ctx = stepContext(task, { job: taskJob(task.id, { attemptsMade, attempts }), cacheKey: 'key-1' });
  if (stoppedBy) ctx.run.abort(stoppedBy);
  return { step, stateMachine, waiting, timeOut, reloaded, ctx };
}

describe('FailTask', () => {
  it('puts a transient failure back in the queue and rethrows it, so BullMQ retries after its backoff', async () => {
    const { step, stateMachine, waiting, ctx } = setup();
    const outage = ProviderError.transient('provider_unavailable', '503 from the provider');
    expect(await step.run(ctx, outage, 'runway')).toEqual({ kind: 'rethrow', error: outage });
    expect(stateMachine.requeue).toHaveBeenCalledWith(ctx.task.id, [TaskStatus.Processing], {
      code: 'provider_unavailable',
      message: '503 from the provider',
      retryable: true,
    });
    expect(stateMachine.fail).not.toHaveBeenCalled();
    expect(waiting.releaseCacheLead).toHaveBeenCalledWith('key-1', ctx.task.id);
  });

  it('retries what it cannot classify (a database hiccup) as an internal error', async () => {
    const { step, stateMachine, ctx } = setup();
    const hiccup = new Error('connection reset');
    expect(await step.run(ctx, hiccup, undefined)).toEqual({ kind: 'rethrow', error: hiccup });
    expect(stateMachine.requeue).toHaveBeenCalledWith(ctx.task.id, [TaskStatus.Processing], {
      code: 'internal_error',
      message: 'connection reset',
      retryable: true,
    });
  });

  it('fails the task on a permanent failure: UnrecoverableError, and the provider slot freed', async () => {
    const { step, stateMachine, waiting, ctx } = setup();
    const refused = ProviderError.permanent('input_invalid', 'prompt: too long');
    const outcome = await step.run(ctx, refused, 'openai');
    expect(outcome).toEqual({ kind: 'rethrow', error: expect.any(UnrecoverableError) });
    expect(stateMachine.fail).toHaveBeenCalledWith(
      ctx.task.id,
      { code: 'input_invalid', message: 'prompt: too long', retryable: false },
      { from: [TaskStatus.Queued, TaskStatus.Processing], provider: 'openai' },
    );
    expect(waiting.releaseSlot).toHaveBeenCalledWith('openai', ctx.task.id);
    expect(waiting.releaseTaskCaps).toHaveBeenCalledWith(ctx.task);
    expect(stateMachine.requeue).not.toHaveBeenCalled();
  });

  it('fails the task on the last attempt, even when the failure is transient', async () => {
    const { step, stateMachine, waiting, ctx } = setup({ attemptsMade: 2, attempts: 3 });
    const outcome = await step.run(ctx, ProviderError.transient('timeout', 'no answer'), undefined);
    expect(outcome).toEqual({ kind: 'rethrow', error: expect.any(UnrecoverableError) });
    expect(stateMachine.fail).toHaveBeenCalledWith(ctx.task.id, expect.objectContaining({ code: 'timeout' }), {
      from: [TaskStatus.Queued, TaskStatus.Processing],
      provider: null,
    });
    expect(waiting.releaseSlot).not.toHaveBeenCalled();
  });

  it('ends a cancelled run quietly: the row is cancelled already; only the slot and the cache claim go', async () => {
    const { step, stateMachine, waiting, ctx } = setup({ stoppedBy: 'cancelled' });
    expect(await step.run(ctx, new Error('aborted'), 'runway')).toEqual({ kind: 'done' });
    expect(waiting.releaseSlot).toHaveBeenCalledWith('runway', ctx.task.id);
    expect(waiting.releaseTaskCaps).toHaveBeenCalledWith(ctx.task);
    expect(waiting.releaseCacheLead).toHaveBeenCalledWith('key-1', ctx.task.id);
    expect(stateMachine.fail).not.toHaveBeenCalled();
    expect(stateMachine.requeue).not.toHaveBeenCalled();
  });

  it('fails a run stopped at its deadline as timed out, with the row as it is now', async () => {
    const { step, stateMachine, timeOut, reloaded, ctx } = setup({ stoppedBy: 'timeout' });
    const outcome = await step.run(ctx, new Error('aborted'), 'runway');
    expect(outcome).toEqual({ kind: 'rethrow', error: new UnrecoverableError('timeout') });
    expect(timeOut.run).toHaveBeenCalledWith(reloaded, ctx.timeoutMs);
    expect(stateMachine.requeue).not.toHaveBeenCalled();
  });

  it('hands a run stopped by the shutdown back to BullMQ, to be retried elsewhere, leaving the row', async () => {
    const { step, stateMachine, waiting, ctx } = setup({ stoppedBy: 'shutdown' });
    const outcome = await step.run(ctx, new Error('aborted'), 'runway');
    expect(outcome).toEqual({ kind: 'rethrow', error: new Error('worker shut down while the task ran') });
    expect(outcome.kind === 'rethrow' && outcome.error instanceof UnrecoverableError).toBe(false);
    expect(stateMachine.fail).not.toHaveBeenCalled();
    expect(stateMachine.requeue).not.toHaveBeenCalled();
    expect(waiting.releaseSlot).not.toHaveBeenCalled();
  });

  it('leaves everything to the run that holds the lock now when this one lost it', async () => {
    const { step, stateMachine, waiting, timeOut, ctx } = setup({ stoppedBy: 'lock_lost' });
    const outcome = await step.run(ctx, new Error('aborted'), 'runway');
    expect(outcome).toEqual({ kind: 'rethrow', error: new Error('lock lost: the job is run elsewhere') });
    expect(waiting.releaseCacheLead).not.toHaveBeenCalled();
    expect(waiting.releaseSlot).not.toHaveBeenCalled();
    expect(waiting.releaseTaskCaps).not.toHaveBeenCalled();
    expect(stateMachine.fail).not.toHaveBeenCalled();
    expect(stateMachine.requeue).not.toHaveBeenCalled();
    expect(timeOut.run).not.toHaveBeenCalled();
  });
});
