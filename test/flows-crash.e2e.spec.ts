import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Sandbox, startSandbox } from '../sandbox/sandbox';
import { QueueGateway } from '../src/queue/queue.gateway';
import { QueueName } from '../src/queue/queue.constants';
import { ReconcilerProcessor } from '../src/processing/reconciler.processor';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { deleteRedisKeys, TEST_JWT_SECRET, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';
import { WebhookReceiver } from './support/webhook-receiver';

const ROOT = join(__dirname, '..');

/** A worker process of the platform, as `npm start` runs it, on the TypeScript sources. */
function spawnWorker(env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), join(ROOT, 'src', 'main.ts')],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

describe('flow runs when a worker dies', () => {
  let sandbox: Sandbox;
  let database: { name: string; url: string };
  const redisPrefix = `flowcrash${process.pid}`;
  let api: TestApp;
  let survivor: TestApp | undefined;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    sandbox = await startSandbox({ basePort: 0, runpodExecution: 'simulated' });
    database = await createTestDatabase();
    api = await TestApp.start({ database, redisPrefix, sandbox, env: { APP_ROLE: 'api' } });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await survivor?.close();
    await api.close();
    await sandbox.close();
    await dropTestDatabase(database.name);
    await deleteRedisKeys(redisPrefix);
  });

  /** A worker process of this deployment, as `npm start` runs one. */
  const workerEnv = (): Record<string, string> => ({
    APP_ROLE: 'worker',
    PORT: '0',
    DATABASE_URL: database.url,
    REDIS_URL,
    REDIS_PREFIX: redisPrefix,
    QUEUE_BACKEND: TEST_QUEUE_BACKEND,
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    WORKER_LOCK_MS: '1000',
    STORAGE_DIR: api.config.storage.localDir,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    ...sandbox.env,
  });

  const readRun = async (id: string) => (await api.request('GET', `/api/v1/flows/runs/${id}`)).body;
  const stepOf = (run: any, id: string) => run.steps.find((s: any) => s.id === id);
  const tasksOfStep = async (runId: string, stepId: string) =>
    (
      await api.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM tasks WHERE flow_run_id = $1 AND flow_step_id = $2`,
        [runId, stepId],
      )
    )[0].n;

  it('never runs a completed step again: the next worker finishes the run from the step that was under way', async () => {
    const flow = await api.request('POST', '/api/v1/flows', {
      body: {
        name: 'crash',
        trigger: { type: 'api' },
        steps: [
          { id: 'subs', kind: 'task', task_type: 'subtitle_generation', input: { text: '{{ trigger.text }}' } },
          { id: 'img', kind: 'task', task_type: 'image_generation', input: { prompt: '{{ trigger.text }}' } },
          { id: 'check', kind: 'condition', if: "steps.img.status = 'completed'", then: 'end' },
        ],
      },
    });
    expect(flow.status).toBe(201);
    sandbox.knobs.latencyMs = 60_000; // the image provider answers only after the kill
    child = spawnWorker({ ...workerEnv(), CACHE_ENABLED: 'false' });
    const started = await api.request('POST', `/api/v1/flows/${flow.body.id}/runs`, {
      body: { input: { text: 'A lighthouse at dawn.' } },
    });
    expect(started.status).toBe(202);
    const runId = started.body.run_id as string;
    const generations = () => sandbox.stats.openai.requests.get('POST /v1/images/generations') ?? 0;
    await waitUntil('the image call of the child', () => generations() > 0, { timeoutMs: 40_000, intervalMs: 50 });
    const before = await readRun(runId);
    expect(before.status).toBe('waiting');
    expect(stepOf(before, 'subs')).toMatchObject({ status: 'completed', attempts: 1 });
    expect(stepOf(before, 'img')).toMatchObject({ status: 'waiting', attempts: 1 });

    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    sandbox.knobs.latencyMs = 0;

    survivor = await TestApp.start({
      database,
      redisPrefix,
      sandbox,
      listen: false,
      env: { APP_ROLE: 'worker', WORKER_LOCK_MS: '1000' },
    });
    const run = await waitUntil('the run to end', () => readRun(runId), {
      timeoutMs: 20_000,
      intervalMs: 100,
      until: (r) => ['completed', 'failed'].includes(r.status),
    });
    expect(run.status).toBe('completed');
    // The completed step kept its one try and its one task; the step under way adopted its task instead of a second.
    expect(stepOf(run, 'subs')).toMatchObject({ attempts: 1, finished_at: stepOf(before, 'subs').finished_at });
    expect(stepOf(run, 'subs').task_id).toBe(stepOf(before, 'subs').task_id);
    expect(await tasksOfStep(runId, 'subs')).toBe(1);
    expect(await tasksOfStep(runId, 'img')).toBe(1);
    expect(stepOf(run, 'img')).toMatchObject({
      status: 'completed',
      attempts: 1,
      task_id: stepOf(before, 'img').task_id,
    });
    expect(stepOf(run, 'check').output).toEqual({ value: true, next: 'end' });
  }, 90_000);

  it('the reconciler gives a live run whose step job was lost its job again, and re-runs no completed step', async () => {
    const flow = await api.request('POST', '/api/v1/flows', {
      body: {
        name: 'lost job',
        trigger: { type: 'api' },
        steps: [
          { id: 'first', kind: 'delay', seconds: 0 },
          { id: 'nap', kind: 'delay', seconds: 600 },
        ],
      },
    });
    const runId = (await api.request('POST', `/api/v1/flows/${flow.body.id}/runs`, { body: {} })).body.run_id;
    await waitUntil('the run to wait', () => readRun(runId), { until: (r) => r.status === 'waiting' });
    const queue = api.app.get(QueueGateway).queue(QueueName.Flows);
    const jobId = `${runId}.nap.1`;
    await waitUntil('the job to be delayed', () => queue.getJobState(jobId), { until: (s) => s === 'delayed' });
    await (await queue.getJob(jobId))!.remove(); // as a flushed Redis would lose it
    const before = await readRun(runId);

    const report = await survivor!.app.get(ReconcilerProcessor).reconcile();
    expect(report.flowSteps).toBe(1);
    // The job runs, finds the step waiting until its time, and goes back to the delayed set.
    await waitUntil('the job to be delayed again', () => queue.getJobState(jobId), { until: (s) => s === 'delayed' });
    const after = await readRun(runId);
    expect(after.status).toBe('waiting');
    expect(stepOf(after, 'first')).toEqual(stepOf(before, 'first'));
    expect(stepOf(after, 'nap')).toMatchObject({
      status: 'waiting',
      attempts: 1,
      wake_at: stepOf(before, 'nap').wake_at,
    });
    // A live job: nothing to do the next time.
    expect((await survivor!.app.get(ReconcilerProcessor).reconcile()).flowSteps).toBe(0);
    expect((await api.request('POST', `/api/v1/flows/runs/${runId}/cancel`)).status).toBe(200);
  }, 30_000);

  it('a worker killed in an http step, then another in a delay: each step under way runs again, no completed one', async () => {
    // Only the workers of this test run steps.
    await survivor?.close();
    survivor = undefined;
    const receiver = await WebhookReceiver.start();
    let slow = true;
    receiver.answer(async (req, _n, res) => {
      // The first call of the API is answered only after its worker is gone.
      if (req.path === '/api' && slow) await new Promise((resolve) => setTimeout(resolve, 5000));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    try {
      const flow = await api.request('POST', '/api/v1/flows', {
        body: {
          name: 'crash between kinds',
          trigger: { type: 'api' },
          steps: [
            { id: 'first', kind: 'condition', if: 'true', then: 'call', else: 'end' },
            { id: 'call', kind: 'http', method: 'POST', url: `${receiver.url}/api`, body: { n: 1 }, timeout_ms: 30000 },
            { id: 'pause', kind: 'delay', seconds: 3 },
            {
              id: 'tell',
              kind: 'notify',
              url: `${receiver.url}/tell`,
              body: { answer: '{{ steps.call.output.ok }}' },
              secret: 'a-secret-of-sixteen-chars-or-more',
            },
          ],
        },
      });
      expect([flow.status, flow.body.message]).toEqual([201, undefined]);
      const worker = () => spawnWorker(workerEnv());
      const kill = async (proc: ChildProcess) => {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        await exited;
      };
      child = worker();
      const runId = (await api.request('POST', `/api/v1/flows/${flow.body.id}/runs`, { body: {} })).body.run_id;
      await receiver.waitFor((all) => all.some((r) => r.path === '/api'), 40_000);
      const inHttp = await readRun(runId);
      expect(stepOf(inHttp, 'first')).toMatchObject({ status: 'completed', attempts: 1 });
      expect(stepOf(inHttp, 'call').status).toBe('running');
      await kill(child);
      slow = false;

      child = worker();
      const inDelay = await waitUntil('the delay step', () => readRun(runId), {
        timeoutMs: 40_000,
        intervalMs: 100,
        until: (r) => stepOf(r, 'pause')?.status === 'waiting',
      });
      await kill(child);

      survivor = await TestApp.start({
        database,
        redisPrefix,
        sandbox,
        listen: false,
        env: { APP_ROLE: 'worker', WORKER_LOCK_MS: '1000' },
      });
      const run = await waitUntil('the run to end', () => readRun(runId), {
        timeoutMs: 30_000,
        intervalMs: 100,
        until: (r) => ['completed', 'failed'].includes(r.status),
      });
      expect(run.status).toBe('completed');
      // Completed steps kept their one try; the http step under way at the kill was sent again (at least once).
      expect(stepOf(run, 'first')).toEqual(stepOf(inHttp, 'first'));
      expect(stepOf(run, 'call')).toEqual(stepOf(inDelay, 'call'));
      expect(receiver.on('/api')).toHaveLength(2);
      // The delay kept its wake time across the kill, and the notification went once.
      const wake = Date.parse(stepOf(inDelay, 'pause').wake_at);
      expect(Date.parse(stepOf(run, 'pause').finished_at)).toBeGreaterThanOrEqual(wake);
      expect(stepOf(run, 'pause').attempts).toBe(1);
      expect(receiver.on('/tell').map((r) => r.json)).toEqual([{ answer: true }]);
    } finally {
      await receiver.close();
    }
  }, 120_000);
});
