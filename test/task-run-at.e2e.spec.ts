import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { QueueGateway } from '../src/queue/queue.gateway';
import { TestApp } from './support/test-app';

const SUBTITLES = '/api/v1/media/subtitles/generate';
const body = { text: 'Later, please.', format: 'srt' };

describe('run_at: a task that starts later', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });
  afterAll(async () => {
    await t.close();
  });

  const jobState = async (id: string) => (await (await t.app.get(QueueGateway).getTaskJob(id))?.getState()) ?? 'none';

  it('stays queued, its job delayed, until run_at; then runs', async () => {
    const runAt = new Date(Date.now() + 1500);
    const res = await t.request('POST', SUBTITLES, { body: { ...body, run_at: runAt.toISOString() } });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'queued', run_at: runAt.toISOString() });
    expect(res.body.input).not.toHaveProperty('run_at');
    expect(await jobState(res.body.id)).toBe('delayed');

    await new Promise((resolve) => setTimeout(resolve, 700));
    const early = await t.request('GET', `/api/v1/media/tasks/${res.body.id}`);
    expect(early.body).toMatchObject({ status: 'queued', started_at: null, run_at: runAt.toISOString() });

    const done = await t.waitForTask(res.body.id, (task) => task.status === 'completed');
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(runAt.getTime() - 50);
    expect(done.run_at).toBe(runAt.toISOString());
  });

  it('runs at once without run_at (run_at null)', async () => {
    const res = await t.request('POST', SUBTITLES, { body });
    expect(res.body.run_at).toBeNull();
    await t.waitForTask(res.body.id, (task) => task.status === 'completed');
  });

  it('keeps the remaining delay when the reconciler adds a job that was lost', async () => {
    const runAt = new Date(Date.now() + 2500);
    const res = await t.request('POST', SUBTITLES, { body: { ...body, run_at: runAt.toISOString() } });
    expect(res.status).toBe(202);
    // The enqueue lost (Redis flushed, or the add failed after the insert).
    await (await t.app.get(QueueGateway).getTaskJob(res.body.id))?.remove();
    expect(await jobState(res.body.id)).toBe('none');

    const report = await t.app.get(ReconcilerProcessor).reconcile();
    expect(report.enqueued).toBeGreaterThanOrEqual(1);
    const job = await t.app.get(QueueGateway).getTaskJob(res.body.id);
    expect(await job?.getState()).toBe('delayed');
    expect(job!.timestamp + (job!.opts.delay ?? 0)).toBeGreaterThanOrEqual(runAt.getTime() - 5);

    const done = await t.waitForTask(res.body.id, (task) => task.status === 'completed');
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(runAt.getTime() - 50);
  });

  it('takes run_at on the items of a batch', async () => {
    const runAt = new Date(Date.now() + 60_000).toISOString();
    const res = await t.request('POST', '/api/v1/media/batch', {
      body: [
        { task_type: 'subtitle_generation', input_data: { text: 'Later.' }, run_at: runAt },
        { task_type: 'subtitle_generation', input_data: { text: 'Now.' } },
      ],
    });
    expect(res.status).toBe(202);
    const [later, now] = res.body.tasks as { id: string }[];
    expect(await jobState(later.id)).toBe('delayed');
    expect((await t.request('GET', `/api/v1/media/tasks/${later.id}`)).body.run_at).toBe(runAt);
    await t.waitForTask(now.id, (task) => task.status === 'completed');
    const bad = await t.request('POST', '/api/v1/media/batch', {
      body: [{ task_type: 'subtitle_generation', input_data: { text: 'x' }, run_at: 'soon' }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.errors)).toContain('run_at');
  });

  it.each([
    ['tomorrow', 'run_at must be an ISO 8601 date-time with a time zone, such as 2030-01-01T09:00:00Z'],
    ['2030-01-01T09:00:00', 'run_at must be an ISO 8601 date-time with a time zone, such as 2030-01-01T09:00:00Z'],
    [12345, 'run_at must be an ISO 8601 date-time with a time zone, such as 2030-01-01T09:00:00Z'],
    [new Date(Date.now() - 3_600_000).toISOString(), 'run_at is in the past'],
    [new Date(Date.now() + 31 * 86_400_000).toISOString(), 'run_at may be at most 30 days ahead'],
  ])('refuses run_at %p with 400 naming run_at', async (runAt, message) => {
    const res = await t.request('POST', SUBTITLES, { body: { ...body, run_at: runAt } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'run_at', message })]);
  });
});
