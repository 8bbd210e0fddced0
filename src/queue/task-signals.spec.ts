import { BackendFixture, BACKENDS, BackendName } from '../../test/support/backend-fixture';
import { waitUntil } from '../../test/support/wait';
import { PostgresTaskSignals } from './postgres-task-signals';
import { RedisTaskSignals } from './redis-task-signals';
import type { TaskSignalsService } from './task-signals.service';

describe.each(BACKENDS)('cancel signals on %s', (backend: BackendName) => {
  let fixture: BackendFixture;
  const signalsOf = (p: Awaited<ReturnType<BackendFixture['process']>>): TaskSignalsService =>
    backend === 'postgres' ? new PostgresTaskSignals(p.notifications) : new RedisTaskSignals(p.redis);

  beforeAll(async () => (fixture = await BackendFixture.start()));
  afterAll(async () => fixture?.close());

  it('reach every worker process listening, from the process that sent them', async () => {
    const api = signalsOf(await fixture.process());
    const workers = [await fixture.process(), await fixture.process()].map(signalsOf);
    const heard = workers.map(() => [] as string[]);
    workers.forEach((w, i) => w.onCancel((taskId) => heard[i].push(taskId)));
    // A worker's listening is confirmed asynchronously: send until the first signal is heard by both.
    await waitUntil('both workers to listen', async () => {
      await api.publishCancel('probe');
      return heard.every((h) => h.includes('probe'));
    });
    await api.publishCancel('task-1');
    await api.publishCancel('task-2');
    await waitUntil('both signals everywhere', () => heard.every((h) => h.includes('task-2')));
    for (const h of heard) expect(h.filter((id) => id !== 'probe')).toEqual(['task-1', 'task-2']);
  });
});

describe('cancel signals on postgres after the listening connection breaks', () => {
  let fixture: BackendFixture;
  beforeAll(async () => (fixture = await BackendFixture.start()));
  afterAll(async () => fixture?.close());

  it('are heard again once the connection is made again by itself', async () => {
    const api = new PostgresTaskSignals((await fixture.process()).notifications);
    const workerProcess = await fixture.process();
    const worker = new PostgresTaskSignals(workerProcess.notifications);
    const heard: string[] = [];
    worker.onCancel((taskId) => heard.push(taskId));
    await waitUntil('the worker to listen', async () => {
      await api.publishCancel('before');
      return heard.includes('before');
    });
    // What a Postgres restart does to the connection.
    const [{ n }] = await workerProcess.sql.rows<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'media-tasks-listener'`,
    );
    expect(n).toBeGreaterThan(0);
    await waitUntil(
      'the worker to listen again',
      async () => {
        await api.publishCancel('after');
        return heard.includes('after');
      },
      { intervalMs: 100 },
    );
  });
});
