import { DelayedError, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { fake, taskJob, taskRow } from '../../test/support/processing-fakes';
import { ResultCache } from '../cache/result-cache.service';
import { AppConfig } from '../config/app-config';
import { MediaProvider, ProviderError } from '../providers/provider.port';
import { TaskEntity } from '../tasks/entities/task.entity';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { TaskStatus, TaskType } from '../tasks/task.enums';
import { TasksRepository } from '../tasks/tasks.repository';
import { CollectParts } from './steps/collect-parts.step';
import { FailTask } from './steps/fail-task.step';
import { PollTask } from './steps/poll-task.step';
import { ServeFromCache } from './steps/serve-from-cache.step';
import { SplitTask } from './steps/split-task.step';
import { StepContext } from './steps/step-context';
import { StepOutcome } from './steps/step-outcome';
import { StoreOutputs } from './steps/store-outputs.step';
import { SubmitTask } from './steps/submit-task.step';
import { TimeOutTask } from './steps/time-out-task.step';
import { TaskProgress } from './task-progress';
import { TaskRuns } from './task-runs';
import { TaskProcessor } from './task.processor';
import { WaitingTasks } from './waiting-tasks';

type StepFn = jest.Mock<Promise<StepOutcome>, [StepContext, ...unknown[]]>;
const step = (): StepFn => jest.fn<Promise<StepOutcome>, [StepContext, ...unknown[]]>(async () => ({ kind: 'done' }));

/** A processor whose row is `row` (started by the job, or found as it is) and whose steps answer as told. */
function setup(row: TaskEntity | null, { started = true, cacheEnabled = false } = {}) {
  const steps = {
    timeOut: jest.fn(async () => undefined),
    split: step(),
    collect: step(),
    cached: step(),
    submit: step(),
    poll: step(),
    store: step(),
    fail: jest.fn(async (): Promise<{ kind: 'done' } | { kind: 'rethrow'; error: unknown }> => ({ kind: 'done' })),
  };
  const runs = new TaskRuns();
  const waiting = { leaveLines: jest.fn(async (_task: TaskEntity) => undefined) };
  const processor = new TaskProcessor(
    fake<AppConfig>({ taskTimeoutOverrides: { [TaskType.ImageGeneration]: 60 }, fanout: { partMinImages: 10 } }),
    fake<TasksRepository>({ findById: async () => row }),
    fake<TaskStateMachine>({ start: async () => (started ? row : null) }),
    fake<ResultCache>({ enabled: cacheEnabled, keyOf: () => 'key-1' }),
    runs,
    fake<TaskProgress>({ reporterFor: () => jest.fn() }),
    fake<TimeOutTask>({ run: steps.timeOut }),
    fake<SplitTask>({ run: steps.split }),
    fake<CollectParts>({ run: steps.collect }),
    fake<ServeFromCache>({ run: steps.cached }),
    fake<SubmitTask>({ run: steps.submit }),
    fake<PollTask>({ run: steps.poll }),
    fake<StoreOutputs>({ run: steps.store }),
    fake<FailTask>({ run: steps.fail }),
    fake<WaitingTasks>({ leaveLines: waiting.leaveLines }),
  );
  const job = taskJob(row?.id ?? '5b0c4bd2-3d55-4a53-9d6a-1f1bd1f5a2a4');
  return { processor, steps, runs, job, waiting };
}

describe('TaskProcessor', () => {
  it('drops a job whose task does not exist, and one whose task is not processing', async () => {
    const missing = setup(null, { started: false });
    await missing.processor.process(missing.job, 'token');
    const finished = setup(taskRow({ status: TaskStatus.Completed }), { started: false });
    await finished.processor.process(finished.job, 'token');
    for (const { steps } of [missing, finished]) {
      expect(Object.values(steps).every((s) => s.mock.calls.length === 0)).toBe(true);
    }
  });

  it('takes a job’s ended task out of the lines it may stand in, and leaves a pending one’s alone', async () => {
    const cancelled = setup(taskRow({ status: TaskStatus.Cancelled }), { started: false });
    await cancelled.processor.process(cancelled.job, 'token');
    expect(cancelled.waiting.leaveLines).toHaveBeenCalledWith(expect.objectContaining({ status: 'cancelled' }));
    const pending = setup(taskRow({ status: TaskStatus.Pending }), { started: false });
    await pending.processor.process(pending.job, 'token');
    expect(pending.waiting.leaveLines).not.toHaveBeenCalled();
  });

  it('times out a task past its deadline without running any step', async () => {
    const task = taskRow({ startedAt: new Date(Date.now() - 61_000) });
    const { processor, steps, job } = setup(task, { started: false });
    await processor.process(job, 'token');
    expect(steps.timeOut).toHaveBeenCalledWith(task, 60_000);
    expect(steps.submit).not.toHaveBeenCalled();
  });

  it('runs the steps one leads to, in order, within one run, and ends the run', async () => {
    const task = taskRow();
    const { processor, steps, runs, job } = setup(task, { cacheEnabled: true });
    const call = { provider: fake<MediaProvider>({ name: 'openai' }), output: { artifacts: [] }, latencyMs: 5 };
    steps.cached.mockResolvedValueOnce({ kind: 'next', step: { kind: 'submit' } });
    steps.submit.mockResolvedValueOnce({ kind: 'next', step: { kind: 'store', call } });
    await processor.process(job, 'token');
    expect(steps.cached).toHaveBeenCalledWith(expect.objectContaining({ task, cacheKey: 'key-1' }), 'key-1');
    expect(steps.store).toHaveBeenCalledWith(expect.objectContaining({ task, prefix: 'tasks' }), call);
    const order = [steps.cached, steps.submit, steps.store].map((s) => s.mock.invocationCallOrder[0]);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(runs.size).toBe(0);
  });

  it('polls a stored provider job', async () => {
    const task = taskRow({ provider: 'runway', providerJob: { id: 'job-9' } });
    const { processor, steps, job } = setup(task);
    await processor.process(job, 'token');
    expect(steps.poll).toHaveBeenCalledWith(expect.objectContaining({ task }), 'runway', { id: 'job-9' });
  });

  it('puts the job back in the delayed set for a later step (BullMQ: DelayedError)', async () => {
    const { processor, steps, job } = setup(taskRow());
    steps.submit.mockResolvedValueOnce({ kind: 'later', ms: 1500 });
    const before = Date.now();
    await expect(processor.process(job, 'token')).rejects.toBeInstanceOf(DelayedError);
    const [[at, token]] = (job.moveToDelayed as jest.Mock).mock.calls;
    expect(token).toBe('token');
    expect(at).toBeGreaterThanOrEqual(before + 1500);
    expect(steps.fail).not.toHaveBeenCalled();
  });

  it('lets a split task job wait for its parts (BullMQ: WaitingChildrenError)', async () => {
    const task = taskRow({ type: TaskType.Img2Vid, parts: 3, input: { images: [] } });
    const { processor, steps, job } = setup(task);
    steps.collect.mockResolvedValueOnce({ kind: 'waiting-children' });
    await expect(processor.process(job, 'token')).rejects.toBeInstanceOf(WaitingChildrenError);
  });

  it('hands a failure to FailTask, with the provider it happened at, and ends the job as it says', async () => {
    const { processor, steps, job } = setup(taskRow());
    const refused = ProviderError.permanent('input_invalid', 'prompt: too long');
    steps.submit.mockResolvedValueOnce({ kind: 'failed', error: refused, provider: 'openai' });
    steps.fail.mockResolvedValueOnce({ kind: 'rethrow', error: new UnrecoverableError('prompt: too long') });
    await expect(processor.process(job, 'token')).rejects.toBeInstanceOf(UnrecoverableError);
    expect(steps.fail).toHaveBeenCalledWith(expect.objectContaining({ job }), refused, 'openai');
  });

  it("fails a step that throws at the provider on the task's row", async () => {
    const { processor, steps, job } = setup(taskRow({ provider: 'runway', providerJob: { id: 'j' } }));
    const hiccup = new Error('connection reset');
    steps.poll.mockRejectedValueOnce(hiccup);
    await processor.process(job, 'token');
    expect(steps.fail).toHaveBeenCalledWith(expect.anything(), hiccup, 'runway');
  });

  it('fails a task whose output folder storage would not take, before any provider is called', async () => {
    const { processor, steps, job } = setup(taskRow({ input: { prompt: 'x', path: '../outside' } }));
    await processor.process(job, 'token');
    expect(steps.submit).not.toHaveBeenCalled();
    expect(steps.fail).toHaveBeenCalledWith(
      expect.anything(),
      expect.objectContaining({ code: 'input_invalid' }),
      undefined,
    );
  });

  it('fails the run when the job cannot go back to the delayed set', async () => {
    const { processor, steps, job } = setup(taskRow());
    steps.submit.mockResolvedValueOnce({ kind: 'later', ms: 10 });
    const lost = new Error('Missing lock for job');
    (job.moveToDelayed as jest.Mock).mockRejectedValueOnce(lost);
    steps.fail.mockResolvedValueOnce({ kind: 'rethrow', error: lost });
    await expect(processor.process(job, 'token')).rejects.toBe(lost);
  });
});
