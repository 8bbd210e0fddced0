import { randomUUID } from 'node:crypto';
import { TaskEntity } from '../src/tasks/entities/task.entity';
import { TaskStateMachine } from '../src/tasks/task-state-machine';
import { TaskEventType, TaskStatus, TaskType } from '../src/tasks/task.enums';
import { TasksRepository } from '../src/tasks/tasks.repository';
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

  it('writes concurrent submits together, each with its own outcome: one bad row fails only itself', async () => {
    const repository = t.app.get(TasksRepository);
    const existing = await factory.task(t.dataSource);
    const tasks = Array.from({ length: 40 }, (_, i) =>
      TaskEntity.create({
        id: i === 7 ? existing.id : randomUUID(), // a duplicate key: refused by Postgres
        userId: 'alice',
        type: TaskType.SubtitleGeneration,
        input: { text: `task ${i}`, format: 'srt' },
        webhookUrl: i % 3 === 0 ? 'https://hooks.example.com/x' : null,
        createdAt: new Date(),
      }),
    );
    const outcomes = await Promise.allSettled(tasks.map((task) => repository.insert(task)));
    expect(outcomes.map((o) => o.status)).toEqual(tasks.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    const written = await t.dataSource.query<{ id: string; input: { text: string } }[]>(
      `SELECT id, input FROM tasks WHERE id = ANY($1)`,
      [tasks.map((task) => task.id)],
    );
    expect(new Map(written.map((row) => [row.id, row.input.text])).get(tasks[8].id)).toBe('task 8');
    expect(written).toHaveLength(40); // 39 new rows and the one that was there
    const deliveries = await t.dataSource.query<{ id: string; task_id: string; event_type: string }[]>(
      `SELECT id, task_id, event_type FROM webhook_deliveries WHERE task_id = ANY($1)`,
      [tasks.map((task) => task.id)],
    );
    const expected = tasks.filter((task, i) => task.webhookUrl && i !== 7);
    expect(deliveries.map((d) => d.task_id).sort()).toEqual(expected.map((task) => task.id).sort());
    outcomes.forEach((o, i) => {
      if (o.status !== 'fulfilled') return;
      const delivery = deliveries.find((d) => d.task_id === tasks[i].id);
      expect(o.value.deliveryId).toBe(delivery?.id ?? null);
    });
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

  it('judges each row alone when many tasks move at once (their writes share statements)', async () => {
    const tasks = await Promise.all(Array.from({ length: 30 }, () => factory.task(t.dataSource)));
    const cancelled = new Set(tasks.slice(0, 5).map((task) => task.id));
    await Promise.all([...cancelled].map((id) => machine.cancel(id)));
    const started = await Promise.all(tasks.map((task) => machine.start(task.id)));
    expect(started.map((row) => (row ? row.id : null))).toEqual(
      tasks.map((task) => (cancelled.has(task.id) ? null : task.id)),
    );
    const running = tasks.filter((task) => !cancelled.has(task.id));
    const [completed] = await Promise.all([
      Promise.all(running.map((task, i) => machine.complete(task.id, { output: { n: i }, provider: `p${i % 3}` }))),
      // The same task completed twice in one burst: one wins.
      machine.complete(running[0].id, { output: { n: -1 }, provider: 'late' }),
    ]);
    completed.slice(1).forEach((row, i) => {
      expect(row).toMatchObject({ id: running[i + 1].id, status: 'completed', output: { n: i + 1 } });
    });
    const rows = await t.dataSource.query<{ id: string; status: string; output: { n: number } | null }[]>(
      `SELECT id, status, output FROM tasks WHERE id = ANY($1)`,
      [tasks.map((task) => task.id)],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const task of tasks) {
      expect(byId.get(task.id)!.status).toBe(cancelled.has(task.id) ? 'cancelled' : 'completed');
    }
    expect(t.eventsOf(running[0].id).filter((e) => e.type === TaskEventType.Completed)).toHaveLength(1);
    expect([0, -1]).toContain(byId.get(running[0].id)!.output!.n);
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
