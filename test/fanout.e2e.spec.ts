import { TaskEventType, TaskType } from '../src/tasks/task.enums';
import { MediaProvider, ProviderContext, ProviderError, StartOutcome } from '../src/providers/provider.port';
import { Webhook } from 'standardwebhooks';
import { QueueGateway } from '../src/queue/queue.gateway';
import { loseQueueStore, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const HOOK_SECRET = 'a-deployment-secret-0123456789';

const TASKS = '/api/v1/media/tasks';

function images(prefix: string, count: number, url = 'http://127.0.0.1:9/frame.png') {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, image_url: url, duracao: 1 }));
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    });
  });
}

/**
 * An img2vid provider with a cap whose runs follow the test's rules: a run that holds an image id listed in
 * `transientOnce` fails once with a retryable error, one holding an id in `permanent` fails for good. Each image
 * becomes a tiny named file, so the aggregation's order shows in the output.
 */
class PartsProvider extends MediaProvider<TaskType.Img2Vid> {
  readonly name = 'parts-provider';
  readonly taskTypes = [TaskType.Img2Vid] as const;
  readonly runs: { taskId: string; ids: string[] }[] = [];
  readonly transientOnce = new Set<string>();
  readonly permanent = new Set<string>();
  active = 0;
  maxActive = 0;
  delayMs = 0;

  isConfigured(): boolean {
    return true;
  }

  override maxConcurrency(): number {
    return 3;
  }

  async start(ctx: ProviderContext<TaskType.Img2Vid>): Promise<StartOutcome> {
    const ids = ctx.input.images.map((i) => i.id);
    this.runs.push({ taskId: ctx.taskId, ids });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs) await abortableSleep(this.delayMs, ctx.signal);
      const flaky = ids.find((id) => this.transientOnce.has(id));
      if (flaky) {
        this.transientOnce.delete(flaky);
        throw ProviderError.transient('provider_unavailable', `upstream 503 on ${flaky}`);
      }
      const bad = ids.find((id) => this.permanent.has(id));
      if (bad) throw ProviderError.permanent('input_invalid', `${bad}: not an image`);
      return {
        kind: 'completed',
        output: {
          artifacts: ids.map((id) => ({ contentType: 'video/mp4', data: Buffer.from(id), filename: `${id}.mp4` })),
          data: { clips: ids.map((id) => ({ id, duration_s: 1 })) },
        },
        cost: { amount: 0.01 * ids.length, currency: 'USD' },
      };
    } finally {
      this.active--;
    }
  }
}

describe('fan-out of large img2vid tasks into parts', () => {
  let t: TestApp;
  const provider = new PartsProvider();

  beforeAll(async () => {
    t = await TestApp.start({
      providers: [provider],
      // A quick reconciler, for the lost-queue test.
      env: { WORKER_CONCURRENCY: '6', PROVIDER_POLL_SCALE: '0.02', RECONCILE_INTERVAL_MS: '500' },
    });
  });
  afterAll(() => t.close());
  beforeEach(() => {
    provider.runs.length = 0;
    provider.maxActive = 0;
    provider.delayMs = 0;
  });

  it('splits 100 images into 3 parts (the provider’s cap), aggregates the clips in input order, progress by part', async () => {
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('a', 100) } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const task = await t.waitForTask(id, (x) => x.status === 'completed', 20000);
    expect(task.parts).toBe(3);
    expect(provider.runs.map((r) => r.ids.length).sort()).toEqual([33, 33, 34]);
    expect(task.output.clips.map((c: { id: string }) => c.id)).toEqual(images('a', 100).map((i) => i.id));
    expect(task.output.files.map((f: { filename: string }) => f.filename)).toEqual(
      images('a', 100).map((i) => `${i.id}.mp4`),
    );
    expect(task.output.parts.map((p: { images: number }) => p.images)).toEqual([34, 33, 33]);
    expect(task.provider).toBe('parts-provider');
    expect(task.cost).toEqual({ amount: 1, currency: 'USD' });
    // Progress is parts done / parts, and the parts are tasks of their own pointing at it.
    // In the order of their sequence (two statements on two connections may be answered in either order).
    const progress = t
      .eventsOf(id)
      .filter((e) => e.type === TaskEventType.Progress)
      .sort((a, b) => a.sequence - b.sequence)
      .map((e) => Math.round(e.task.progress * 100));
    // Parts ending together may skip a step (1 of 3 never reported), but progress never repeats or goes backwards.
    expect(progress).toEqual([...new Set(progress)].sort((a, b) => a - b));
    expect(progress[progress.length - 1]).toBe(100);
    for (const p of progress) expect([33, 67, 100]).toContain(p);
    for (const part of task.output.parts as { id: string }[]) {
      const got = await t.request('GET', `${TASKS}/${part.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ status: 'completed', parent_id: id, type: 'img2vid' });
      expect((await t.request('GET', `${TASKS}/${part.id}`, { as: 'mallory' })).status).toBe(404);
    }
    // So do the metrics (this is the file's first task): one img2vid finished, not four.
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /^media_tasks_finished_total\{type="img2vid",provider="parts-provider",status="completed"\} 1$/m,
    );
    // The parts are listed when asked for by their task, to its owner only.
    const partsList = await t.request('GET', `${TASKS}?parent_id=${id}`);
    expect(partsList.status).toBe(200);
    expect(partsList.body.data.map((x: { part_index: number }) => x.part_index).sort()).toEqual([0, 1, 2]);
    expect((await t.request('GET', `${TASKS}?parent_id=${id}`, { as: 'mallory' })).body.data).toEqual([]);
    expect((await t.request('GET', `${TASKS}?parent_id=nope`)).status).toBe(400);
    // The list shows what the client submitted, not the parts.
    const list = await t.request('GET', `${TASKS}?limit=100`);
    expect(list.body.data.map((x: { id: string }) => x.id)).toContain(id);
    expect(list.body.data.some((x: { parent_id?: string }) => x.parent_id)).toBe(false);
  });

  it('runs a task of fewer than twice FANOUT_PART_MIN_IMAGES images whole', async () => {
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('s', 19) } });
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed', 10000);
    expect(task.parts).toBeUndefined();
    expect(provider.runs).toHaveLength(1);
    expect(task.output.clips).toHaveLength(19);
  });

  it('retries a part that failed transiently alone; the others run once', async () => {
    provider.transientOnce.add('r-25');
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('r', 60) } });
    const task = await t.waitForTask(res.body.id, (x) => x.status === 'completed', 20000);
    expect(task.output.clips).toHaveLength(60);
    const runsOf = (id: string) => provider.runs.filter((r) => r.ids.includes(id)).length;
    expect([runsOf('r-0'), runsOf('r-25'), runsOf('r-59')]).toEqual([1, 2, 1]);
    const parts = await Promise.all(
      (task.output.parts as { id: string }[]).map(async (p) => (await t.request('GET', `${TASKS}/${p.id}`)).body),
    );
    expect(parts.map((p) => p.attempts)).toEqual([1, 2, 1]);
  });

  it('fails the task with the part’s error when a part fails for good, cancels the rest; a retry reruns only what did not complete', async () => {
    provider.permanent.add('p-5');
    provider.delayMs = 150;
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('p', 40) } });
    const id = res.body.id as string;
    const failed = await t.waitForTask(id, (x) => x.status === 'failed', 20000);
    expect(failed.error.code).toBe('input_invalid');
    expect(failed.error.message).toMatch(/^part 1 of 3 \(images 1–14\) failed: p-5: not an image/);
    // The parts that had not finished were stopped, none was left queued or running.
    const partRows = () =>
      t.dataSource.query<{ id: string; part_index: number; status: string }[]>(
        `SELECT id, part_index, status FROM tasks WHERE parent_id = $1 ORDER BY part_index`,
        [id],
      );
    const rows = await waitUntil('every part to have finished', partRows, {
      timeoutMs: 5000,
      until: (list) => list.length === 3 && list.every((r) => ['completed', 'cancelled', 'failed'].includes(r.status)),
    });
    expect(rows[0].status).toBe('failed');
    // A retry runs again once the workers have let go of the task's jobs and its parts'.
    for (const taskId of [id, ...rows.map((r) => r.id)]) await t.waitForTaskJobEnded(taskId);
    const runsBefore = provider.runs.length;

    provider.permanent.clear();
    const retried = await t.request('POST', `${TASKS}/${id}/retry`);
    expect(retried.status).toBe(202);
    const done = await t.waitForTask(id, (x) => x.status === 'completed', 20000);
    expect(done.output.clips.map((c: { id: string }) => c.id)).toEqual(images('p', 40).map((i) => i.id));
    const rerun = provider.runs.slice(runsBefore);
    const completedBefore = rows.filter((r: { status: string }) => r.status === 'completed').length;
    expect(rerun).toHaveLength(3 - completedBefore);
    expect(rerun.some((r) => r.ids.includes('p-5'))).toBe(true);
  });

  it('fails the task when a part fails for good while the task’s job is still linking the others', async () => {
    provider.permanent.add('s-5'); // in the first part
    const queue = t.app.get(QueueGateway);
    const enqueue = queue.enqueueTask.bind(queue);
    const statusOf = async (taskId: string) =>
      (await t.dataSource.query<{ status: string }[]>(`SELECT status FROM tasks WHERE id = $1`, [taskId]))[0]?.status;
    let held = false;
    const linking = jest.spyOn(queue, 'enqueueTask').mockImplementation(async (task, opts) => {
      await enqueue(task, opts);
      if (!opts?.parent || held) return;
      held = true;
      // The first part's job runs, and fails for good, before the task's job has linked the other two.
      await waitUntil('the first part to fail', () => statusOf(task.id), { until: (s) => s === 'failed' });
    });
    try {
      const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('s', 40) } });
      const failed = await t.waitForTask(res.body.id as string, (x) => x.status === 'failed', 15000);
      expect(held).toBe(true);
      expect(failed.error.message).toMatch(/^part 1 of 3 \(images 1–14\) failed: s-5: not an image/);
    } finally {
      linking.mockRestore();
    }
  });

  it('loses nothing when the queue is lost mid-fan-out: the task links its parts again and completes', async () => {
    provider.delayMs = 400;
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('q', 40) } });
    const id = res.body.id as string;
    await t.waitForTask(id, (x) => x.parts === 3, 10000);
    await waitUntil('a part to be at the provider', () => provider.active > 0, { timeoutMs: 5000, intervalMs: 10 });
    // What FLUSHALL does to this deployment: the task's job, its parts' jobs, the provider's slots, all gone.
    expect(await loseQueueStore(t)).toBeGreaterThan(0);
    // Recovery takes a reconciler pass or two (every 500 ms here); the wait ends inside the test's own timeout, so a
    // task that never recovers says where its parts stand.
    const task = await t
      .waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 20000)
      .catch(async (err: Error) => {
        const parts = await t.dataSource.query(
          `SELECT id, part_index, status, attempts, updated_at FROM tasks WHERE parent_id = $1 ORDER BY part_index`,
          [id],
        );
        const jobs = await Promise.all(
          [id, ...parts.map((p: { id: string }) => p.id)].map(async (jobId) => {
            const job = await t.app.get(QueueGateway).getTaskJob(jobId);
            return job ? await job.getState() : 'missing';
          }),
        );
        throw new Error(`${err.message}; parts: ${JSON.stringify(parts)}; jobs (task, parts): ${jobs.join(', ')}`);
      });
    expect(task.status).toBe('completed');
    expect(task.output.clips.map((c: { id: string }) => c.id)).toEqual(images('q', 40).map((i) => i.id));
  }, 45000);

  it('cancelling the task cancels its parts', async () => {
    provider.delayMs = 3000;
    const res = await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images('c', 30) } });
    const id = res.body.id as string;
    await t.waitForTask(id, (x) => x.parts === 3, 10000);
    await waitUntil('the three parts to be at the provider', () => provider.active, {
      until: (n) => n >= 3,
      timeoutMs: 5000,
    }).catch(async (err: Error) => {
      const parts = await t.dataSource.query(`SELECT id, status FROM tasks WHERE parent_id = $1`, [id]);
      throw new Error(`${err.message}; parts: ${JSON.stringify(parts)}`);
    });
    expect(provider.active).toBe(3);
    const cancelled = await t.request('POST', `${TASKS}/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const rows = await t.dataSource.query(`SELECT status FROM tasks WHERE parent_id = $1`, [id]);
    expect(rows.map((r: { status: string }) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    // The runs were told to stop: the provider's calls end well before their 3 s.
    await waitUntil('the provider calls to end', () => provider.active === 0, { timeoutMs: 2000 });
  });

  it('a cancelled task leaves the provider’s line at once: the tasks after it do not wait for its place to lapse', async () => {
    provider.delayMs = 3000;
    const submit = async (prefix: string) =>
      (await t.request('POST', '/api/v1/media/videos/img2vid', { body: { images: images(prefix, 30) } })).body
        .id as string;
    const running = await submit('h');
    await t.waitForTask(running, (x) => x.parts === 3, 10000);
    await waitUntil('the first task’s parts to hold the three slots', () => provider.active, { until: (n) => n >= 3 });
    // Its parts stand in the provider's line behind the first task's, from the moment it is split.
    const waiting = await submit('w');
    await t.waitForTask(waiting, (x) => x.parts === 3, 10000);
    expect((await t.request('POST', `${TASKS}/${waiting}/cancel`)).status).toBe(200);
    expect((await t.request('POST', `${TASKS}/${running}/cancel`)).status).toBe(200);
    await waitUntil('the first task’s calls to end', () => provider.active, { until: (n) => n === 0, timeoutMs: 2000 });
    // The slots are free and nobody waits: the next task's parts are all at the provider at once, not after the
    // cancelled parts' places lapse (5 s without asking).
    const next = await submit('n');
    await waitUntil('the next task’s three parts to be at the provider', () => provider.active, {
      until: (n) => n >= 3,
      timeoutMs: 2500,
    });
    expect((await t.request('POST', `${TASKS}/${next}/cancel`)).status).toBe(200);
  });
});

describe('the sources’ scenario: four 100-image jobs at RunPod with 3 workers, from two worker processes', () => {
  let a: TestApp;
  let b: TestApp;
  const CLIP_MS = 20;

  beforeAll(async () => {
    const env = {
      // Only RunPod can run img2vid here (no local ffmpeg), as in the sources.
      FFMPEG_PATH: '/nonexistent/ffmpeg',
      RUNPOD_MAX_CONCURRENCY: '3',
      PROVIDER_POLL_SCALE: '0.02',
      WORKER_CONCURRENCY: '4',
      WEBHOOK_SECRET: HOOK_SECRET,
    };
    // The emulator would run more at once than the cap: what it counts shows the platform's own limit.
    a = await TestApp.start({
      env,
      sandbox: { runpodExecution: 'simulated', runpodWorkers: 10, knobs: { asyncSteps: 0, clipMs: CLIP_MS } },
    });
    b = await TestApp.start({
      env,
      sandbox: a.sandbox,
      database: a.database,
      redisPrefix: a.redisPrefix,
      listen: false,
    });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('accepts all four at once, never has more than 3 RunPod jobs out, and finishes them one after another', async () => {
    const stats = a.sandbox!.stats.runpod;
    stats.reset();
    const receiver = await WebhookReceiver.start();
    const started = Date.now();
    // One after another, as the sources' clients did: the order they were accepted in is the order they end in.
    const accepted = [];
    for (const k of [0, 1, 2, 3]) {
      accepted.push(
        await a.request('POST', '/video/img2vid/async', {
          body: { images: images(`j${k}`, 100), id_roteiro: `r${k}`, webhook_url: `${receiver.url}/job${k}` },
        }),
      );
    }
    const acceptMs = Date.now() - started;
    expect(accepted.map((r) => r.status)).toEqual([202, 202, 202, 202]);
    expect(acceptMs).toBeLessThan(2000);
    const ids = accepted.map((r) => r.body.jobId as string);
    const done = [];
    for (const id of ids)
      done.push(await a.waitForTask(id, (x) => x.status !== 'queued' && x.status !== 'processing', 60000));
    const makespan = Math.max(...done.map((x) => Date.parse(x.completed_at))) - started;

    expect(done.map((x) => x.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(done.map((x) => x.parts)).toEqual([3, 3, 3, 3]);
    expect(stats.submissions).toBe(12);
    expect(stats.maxOutstanding).toBe(3);
    // One after another: each job ends before the next one does, since its parts are first in line for the slots.
    // A parent's completion follows its last part by a poll or two, and on a busy machine (two processes, the queue
    // on Postgres) by a few more: a later job may end a little before it (half of one job's ideal time), not a whole
    // job before it.
    const ends = done.map((x) => Date.parse(x.completed_at));
    const slack = (100 * CLIP_MS) / 3 / 2;
    const gaps = ends.slice(1).map((end, i) => end - ends[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(-slack);
    // Ideally three jobs' time apart (2,000 ms); shared slots, where all four end together, would be a few polls
    // apart. Half of the ideal: the first job's end may come late by its polls on a busy machine.
    expect(ends[3] - ends[0]).toBeGreaterThan((1.5 * 100 * CLIP_MS) / 3);
    // Parts run side by side: well under three times the ideal of 400 clips over 3 workers, which running the parts
    // of a job one at a time would take (the overhead is a few polls per round; a busy machine adds to it).
    const ideal = (400 * CLIP_MS) / 3;
    process.stdout.write(`fan-out scenario: makespan ${makespan} ms, ideal ${Math.round(ideal)} ms\n`);
    expect(makespan).toBeLessThan(ideal * 3);
    // Every clip, in input order, through the sources' route.
    for (const [k, id] of ids.entries()) {
      const job = await a.request('GET', `/video/job/${id}`);
      expect(job.body.status).toBe('COMPLETED');
      expect(job.body.id_roteiro).toBe(`r${k}`);
      expect(job.body.output.videos.map((v: { id: string }) => v.id)).toEqual(images(`j${k}`, 100).map((i) => i.id));
    }
    // One webhook per job, when it ends, in the sources' body with all 100 videos in order, signed; none from parts.
    await receiver.waitFor((all) => all.length >= 4, 10000);
    // Every delivery row is marked once its answer is back: a webhook of a part would be a row of its own.
    const deliveries = () => a.dataSource.query<{ status: string }[]>(`SELECT status FROM webhook_deliveries`);
    const rows = await waitUntil('every delivery to be marked', deliveries, {
      until: (list) => list.every((d) => d.status === 'delivered'),
    });
    try {
      expect(rows).toHaveLength(4);
      expect(receiver.received.map((r) => r.path).sort()).toEqual(['/job0', '/job1', '/job2', '/job3']);
      for (const hook of receiver.received) {
        const k = Number(hook.path.slice(4));
        expect(hook.json).toMatchObject({ jobId: ids[k], status: 'COMPLETED', error: null, id_roteiro: `r${k}` });
        const videos = (hook.json as { result: { videos: { id: string }[] } }).result.videos;
        expect(videos.map((v) => v.id)).toEqual(images(`j${k}`, 100).map((i) => i.id));
        expect(() =>
          new Webhook(HOOK_SECRET, { format: 'raw' }).verify(hook.body, hook.headers as never),
        ).not.toThrow();
      }
    } finally {
      await receiver.close();
    }
  });

  it('cancelling a running job cancels its parts at RunPod too', async () => {
    const stats = a.sandbox!.stats.runpod;
    stats.reset();
    a.sandbox!.knobs.clipMs = 400;
    try {
      const res = await a.request('POST', '/video/img2vid/async', { body: { images: images('x', 30) } });
      const id = res.body.jobId as string;
      await waitUntil('three jobs out at RunPod', () => stats.outstanding >= 3);
      expect(stats.outstanding).toBe(3);
      const cancelled = await a.request('POST', `/jobs/${id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect((await a.request('GET', `/jobs/${id}`)).body.status).toBe('CANCELLED');
      expect(stats.outstanding).toBe(0);
      expect(stats.requests.get('POST /:endpointId/cancel/:id')).toBe(3);
      const parts = await a.dataSource.query(`SELECT status FROM tasks WHERE parent_id = $1`, [id]);
      expect(parts.map((p: { status: string }) => p.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    } finally {
      a.sandbox!.knobs.clipMs = CLIP_MS;
    }
  });
});
