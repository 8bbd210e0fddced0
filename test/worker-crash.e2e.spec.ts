import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { TEST_JWT_SECRET } from './support/test-app';
import { Sandbox, startSandbox } from '../sandbox/sandbox';
import { createTestDatabase, dropTestDatabase, REDIS_URL, TEST_QUEUE_BACKEND } from './support/databases';
import { deleteRedisKeys, TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const ROOT = join(__dirname, '..');

/** A worker process of the platform, as `npm start` runs it, on the TypeScript sources. */
function spawnWorker(env: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ['-r', join(ROOT, 'test', 'support', 'ts-register.js'), join(ROOT, 'src', 'main.ts')],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

describe('a worker process killed with SIGKILL in the middle of a task', () => {
  let sandbox: Sandbox;
  let database: { name: string; url: string };
  const redisPrefix = `crash${process.pid}`;
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

  it('gives the task back once its lock lapses: another worker runs it to the end, once', async () => {
    sandbox.knobs.latencyMs = 60_000; // the provider answers the first call only after the kill
    child = spawnWorker({
      APP_ROLE: 'worker',
      PORT: '0',
      DATABASE_URL: database.url,
      REDIS_URL,
      REDIS_PREFIX: redisPrefix,
      // The backend of the deployment under test (the postgres project's), not the one a boot would pick.
      QUEUE_BACKEND: TEST_QUEUE_BACKEND,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
      NODE_ENV: 'test',
      WORKER_LOCK_MS: '1000',
      STORAGE_DIR: api.config.storage.localDir,
      CACHE_ENABLED: 'false',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      ...sandbox.env,
    });
    const res = await api.request('POST', '/api/v1/media/images/generate', { body: { prompt: 'a lighthouse' } });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    // The child boots (transpiling the sources), takes the task and calls the provider, which holds the answer.
    const generations = () => sandbox.stats.openai.requests.get('POST /v1/images/generations') ?? 0;
    await waitUntil('the provider call of the child', () => generations() > 0, { timeoutMs: 40_000, intervalMs: 50 });
    expect(generations()).toBe(1);
    expect((await api.waitForTask(id, () => true)).status).toBe('processing');

    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    sandbox.knobs.latencyMs = 0;

    // No word from the dead worker: only its lapsed lock says the task is free again.
    survivor = await TestApp.start({
      database,
      redisPrefix,
      sandbox,
      listen: false,
      env: { APP_ROLE: 'worker', WORKER_LOCK_MS: '1000' },
    });
    const task = await api.waitForTask(id, (x) => x.status === 'completed' || x.status === 'failed', 20_000);
    expect(task.status).toBe('completed');
    expect(task.output.files).toHaveLength(1);
    expect(generations()).toBe(2);
    // One completion: the row's event sequence is created, started, completed (the retake emits no second start).
    const [row] = await api.dataSource.query(`SELECT event_seq FROM tasks WHERE id = $1`, [id]);
    expect(row.event_seq).toBe(3);
  }, 90_000);

  it('keeps renewing the lock of a live worker: a task that runs longer than WORKER_LOCK_MS is not taken back', async () => {
    const generations = () => sandbox.stats.openai.requests.get('POST /v1/images/generations') ?? 0;
    const before = generations();
    sandbox.knobs.latencyMs = 3000;
    try {
      const res = await api.request('POST', '/api/v1/media/images/generate', { body: { prompt: 'a slow one' } });
      const task = await api.waitForTask(res.body.id, (x) => x.status === 'completed' || x.status === 'failed', 20_000);
      expect(task.status).toBe('completed');
      expect(generations() - before).toBe(1);
    } finally {
      sandbox.knobs.latencyMs = 0;
    }
  }, 30_000);
});
