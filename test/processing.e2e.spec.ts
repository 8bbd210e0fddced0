import { QueueName } from '../src/queue/queue.constants';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { TaskEventType, TaskType } from '../src/tasks/task.enums';
import { ScriptedProvider } from './support/scripted-provider';
import { factory } from './support/factories';
import { SubtitleEngineProvider, TestApp } from './support/test-app';

const BASE = '/api/v1/media';

describe('the worker: retries, timeouts, cancel, priorities, progress', () => {
  const images = new ScriptedProvider('scripted-images', [TaskType.ImageGeneration]);
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [images, new SubtitleEngineProvider()],
      env: { TASK_TIMEOUTS: 'image_generation=2', TASK_MAX_ATTEMPTS: '3', TASK_RETRY_DELAYS: '150,300' },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  async function submitImage(body: Record<string, unknown> = {}): Promise<string> {
    const res = await t.request('POST', `${BASE}/images/generate`, { body: { prompt: 'a fox', ...body } });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  it('retries transient failures with backoff and completes, counting attempts', async () => {
    images.setScript(['transient', 'transient', 'ok']);
    const id = await submitImage();
    const task = await t.waitForTask(id, (x) => x.status === 'completed');
    expect(task.attempts).toBe(3);
    expect(task.provider).toBe('scripted-images');
    expect(task.cost).toEqual({ amount: 0.01, currency: 'USD' });
    expect(task.error).toBeNull();
    const calls = images.calls.filter((c) => c.taskId === id);
    expect(calls).toHaveLength(3);
    // 150 ms then 300 ms (±10 % jitter) between the attempts.
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(130);
    expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(260);
    const types = t.eventsOf(id).map((e) => e.type);
    expect(types[0]).toBe(TaskEventType.Created);
    expect(types.at(-1)).toBe(TaskEventType.Completed);
    const sequences = t.eventsOf(id).map((e) => e.sequence);
    expect(sequences).toEqual(sequences.map((_, i) => i + 1));
  });

  it("fails after the last attempt with the provider's error code", async () => {
    images.setScript(['transient']);
    const id = await submitImage();
    const task = await t.waitForTask(id, (x) => x.status === 'failed');
    expect(task.attempts).toBe(3);
    expect(task.error).toEqual({ code: 'provider_unavailable', message: 'upstream answered 503' });
    expect(t.eventsOf(id).filter((e) => e.type === TaskEventType.Failed)).toHaveLength(1);
  });

  it('never retries a permanent failure', async () => {
    images.setScript(['permanent', 'ok']);
    const id = await submitImage();
    const task = await t.waitForTask(id, (x) => x.status === 'failed');
    expect(task.attempts).toBe(1);
    expect(task.error.code).toBe('content_policy');
    // Once its job has ended in BullMQ, no attempt is left to come.
    await t.waitForTaskJobEnded(id);
    expect(images.calls.filter((c) => c.taskId === id)).toHaveLength(1);
  });

  it('fails a task that runs past its type\'s timeout with error.code "timeout"', async () => {
    images.setScript(['hang']);
    const id = await submitImage();
    const task = await t.waitForTask(id, (x) => x.status === 'failed', 8000);
    expect(task.error.code).toBe('timeout');
    expect(task.attempts).toBe(1);
    expect(task.execution_time_ms).toBeGreaterThanOrEqual(1900);
  });

  it('cancels a running task: the provider call is aborted and the task ends cancelled, not completed', async () => {
    images.setScript([{ delayMs: 3000 }]);
    const id = await submitImage();
    await t.waitForTask(id, (x) => x.status === 'processing');
    const res = await t.request('POST', `${BASE}/tasks/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    // The worker has stopped its run once the job has ended: whatever it would have written is written.
    await t.waitForTaskJobEnded(id);
    const task = await t.waitForTask(id, () => true);
    expect(task.status).toBe('cancelled');
    expect(t.eventsOf(id).map((e) => e.type)).toEqual([
      TaskEventType.Created,
      TaskEventType.Started,
      TaskEventType.Cancelled,
    ]);
    const again = await t.request('POST', `${BASE}/tasks/${id}/cancel`);
    expect(again.status).toBe(409);
    expect((await t.request('GET', `${BASE}/tasks/${id}/result`)).status).toBe(409);
  });

  it('retries a cancelled task on request (202), then 409 once it is queued or finished', async () => {
    images.setScript([{ delayMs: 3000 }]);
    const id = await submitImage();
    await t.waitForTask(id, (x) => x.status === 'processing');
    await t.request('POST', `${BASE}/tasks/${id}/cancel`);
    images.setScript(['ok']);
    // A retry is refused (409) while the worker still holds the cancelled run's job.
    await t.waitForTaskJobEnded(id);
    const retried = await t.request('POST', `${BASE}/tasks/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body.status).toBe('queued');
    const done = await t.waitForTask(id, (x) => x.status === 'completed');
    expect(done.attempts).toBe(2);
    expect((await t.request('POST', `${BASE}/tasks/${id}/retry`)).status).toBe(409);
  });

  it('reports 202 on /result while unfinished, and progress at most once a second', async () => {
    images.setScript([{ delayMs: 1300, progress: [0.1, 0.2, 0.3, 0.4] }]);
    const id = await submitImage();
    await t.waitForTask(id, (x) => x.status === 'processing');
    const pending = await t.request('GET', `${BASE}/tasks/${id}/result`);
    expect(pending.status).toBe(202);
    expect(pending.body).toEqual({ id, status: 'processing', status_url: `${BASE}/tasks/${id}` });
    await t.waitForTask(id, (x) => x.status === 'completed');
    const progress = t.eventsOf(id).filter((e) => e.type === TaskEventType.Progress);
    // 0.1 at once, then the latest value (0.4) a second later: never a burst.
    expect(progress.map((e) => e.task.progress)).toEqual([expect.closeTo(0.1, 5), expect.closeTo(0.4, 5)]);
    expect(progress[1].timestamp.getTime() - progress[0].timestamp.getTime()).toBeGreaterThanOrEqual(950);
  });

  it('runs urgent tasks before earlier low-priority ones', async () => {
    await t.app.get(TestApp.queueGatewayToken()).queue(QueueName.Tasks).pause();
    try {
      const low = await t.request('POST', `${BASE}/subtitles/generate`, { body: { text: 'Low.', priority: 'low' } });
      const urgent = await t.request('POST', `${BASE}/subtitles/generate`, {
        body: { text: 'Urgent.', priority: 'urgent' },
      });
      const lowTask = await t.request('GET', `${BASE}/tasks/${low.body.id}`);
      const urgentTask = await t.request('GET', `${BASE}/tasks/${urgent.body.id}`);
      expect(urgentTask.body.queue_position).toBe(1);
      expect(lowTask.body.queue_position).toBe(2);
      await t.app.get(TestApp.queueGatewayToken()).queue(QueueName.Tasks).resume();
      await Promise.all([
        t.waitForTask(low.body.id, (x) => x.status === 'completed'),
        t.waitForTask(urgent.body.id, (x) => x.status === 'completed'),
      ]);
      const gateway = t.app.get(TestApp.queueGatewayToken());
      const [lowJob, urgentJob] = await Promise.all([
        gateway.getTaskJob(low.body.id),
        gateway.getTaskJob(urgent.body.id),
      ]);
      expect(urgentJob!.opts.priority).toBeLessThan(lowJob!.opts.priority!);
      // The worker took the urgent job first although it was submitted second.
      expect(urgentJob!.processedOn!).toBeLessThanOrEqual(lowJob!.processedOn!);
    } finally {
      await t.app.get(TestApp.queueGatewayToken()).queue(QueueName.Tasks).resume();
    }
  });

  it('the reconciler fails a processing task whose worker vanished past its timeout', async () => {
    const orphan = await factory.task(t.dataSource, {
      type: TaskType.ImageGeneration,
      status: 'processing' as never,
      attempts: 1,
      startedAt: new Date(Date.now() - 10_000),
      eventSeq: 2,
    });
    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.timedOut).toBeGreaterThanOrEqual(1);
    const task = await t.waitForTask(orphan.id, () => true);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('timeout');
    expect(t.eventsOf(orphan.id).map((e) => [e.type, e.sequence])).toEqual([[TaskEventType.Failed, 3]]);
  });
});
