import { TaskStateMachine } from '../src/tasks/task-state-machine';
import { TaskEventType, TaskStatus } from '../src/tasks/task.enums';
import { factory } from './support/factories';
import { TestApp } from './support/test-app';

describe('the state machine on Postgres', () => {
  let t: TestApp;
  let machine: TaskStateMachine;

  beforeAll(async () => {
    // No workers here: the tests drive every transition themselves.
    t = await TestApp.start({ env: { APP_ROLE: 'api' }, listen: false });
    machine = t.app.get(TaskStateMachine);
  });
  afterAll(async () => {
    await t.close();
  });

  it('lets exactly one of many concurrent starts win, and completes once', async () => {
    const task = await factory.task(t.dataSource);
    const starts = await Promise.all(Array.from({ length: 8 }, () => machine.start(task.id)));
    expect(starts.filter((s) => s !== null)).toHaveLength(1);
    const completions = await Promise.all(
      Array.from({ length: 5 }, () => machine.complete(task.id, { output: { ok: true }, provider: 'x' })),
    );
    expect(completions.filter((c) => c !== null)).toHaveLength(1);
    const events = t.eventsOf(task.id);
    expect(events.map((e) => [e.type, e.sequence])).toEqual([
      [TaskEventType.Started, 2],
      [TaskEventType.Completed, 3],
    ]);
    const [row] = await t.dataSource.query(`SELECT status, attempts, event_seq FROM tasks WHERE id = $1`, [task.id]);
    expect(row).toEqual({ status: 'completed', attempts: 1, event_seq: 3 });
  });

  it('does not let a late worker complete a cancelled task', async () => {
    const task = await factory.task(t.dataSource);
    await machine.start(task.id);
    expect(await machine.cancel(task.id)).not.toBeNull();
    expect(await machine.complete(task.id, { output: {}, provider: 'x' })).toBeNull();
    expect(await machine.fail(task.id, { code: 'x', message: 'y' })).toBeNull();
    expect(await machine.progress(task.id, 0.5)).toBeNull();
    const [row] = await t.dataSource.query(`SELECT status FROM tasks WHERE id = $1`, [task.id]);
    expect(row.status).toBe('cancelled');
  });

  it('keeps the sequence gapless across progress events and returns to the queue without an event', async () => {
    const task = await factory.task(t.dataSource);
    await machine.start(task.id);
    await machine.progress(task.id, 0.3);
    await machine.progress(task.id, 1.7); // clamped
    await machine.requeue(task.id, [TaskStatus.Processing], { code: 'provider_unavailable', message: '503' });
    await machine.start(task.id);
    await machine.complete(task.id, { output: {}, provider: 'x', cost: { amount: 0.25, currency: 'USD' } });
    const events = t.eventsOf(task.id);
    expect(events.map((e) => e.type)).toEqual([
      TaskEventType.Started,
      TaskEventType.Progress,
      TaskEventType.Progress,
      TaskEventType.Started,
      TaskEventType.Completed,
    ]);
    expect(events.map((e) => e.sequence)).toEqual([2, 3, 4, 5, 6]);
    expect(events[2].task.progress).toBe(1);
    expect(events[4].task).toMatchObject({ attempts: 2, costAmount: 0.25, error: null, progress: 1 });
  });

  it('refuses illegal transitions outright', async () => {
    const task = await factory.task(t.dataSource);
    await expect(machine.requeue(task.id, [TaskStatus.Completed])).rejects.toThrow(/illegal transition/);
  });
});
