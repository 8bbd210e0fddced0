import { Client } from 'pg';
import { CreditsRepository } from '../src/credits/credits.repository';
import { TaskEventType, TaskStatus } from '../src/tasks/task.enums';
import { TasksRepository } from '../src/tasks/tasks.repository';
import { planNodes, plansOf, repositoryDatabase, RepositoryDatabase } from './support/plans';

/**
 * A worker's transitions (grouped: one UPDATE for a batch of tasks) must find their rows by primary key even when the
 * table's statistics know nothing of the backlog the worker drains: statistics gathered while a few tasks were queued,
 * then thousands queued at once (autovacuum has not analyzed the table since). With the status as a plain condition,
 * Postgres read every queued task through the status indexes on every batch.
 */
describe('the plans of grouped transitions', () => {
  let db: RepositoryDatabase;
  let repo: TasksRepository;

  async function insertTasks(count: number, status: TaskStatus): Promise<string[]> {
    const { rows } = await db.pg.query<{ id: string }>(
      `INSERT INTO tasks (id, user_id, type, status, priority, input, created_at, updated_at)
       SELECT gen_random_uuid(), 'u' || (i % 50), 'subtitle_generation', $2, 'medium', '{}', now(), now()
         FROM generate_series(1, $1::int) AS i
       RETURNING id`,
      [count, status],
    );
    return rows.map((row) => row.id);
  }

  beforeAll(async () => {
    db = await repositoryDatabase();
    const { config, dataSource, sql } = db;
    repo = new TasksRepository(dataSource, sql, new CreditsRepository(config, sql, dataSource));
    await insertTasks(20_000, TaskStatus.Completed);
    await insertTasks(20, TaskStatus.Queued);
    await db.pg.query('VACUUM ANALYZE tasks');
  }, 120_000);

  afterAll(async () => {
    await db?.close();
  });

  it('starts a batch of a backlog the statistics do not know by primary key, and each row only from its status', async () => {
    const backlog = await insertTasks(5_000, TaskStatus.Queued);
    const batch = backlog.slice(0, 60);
    const sent: { text: string; values: unknown[] }[] = [];
    const original = Client.prototype.query as (...args: unknown[]) => unknown;
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (this: Client, ...args: unknown[]) {
      const first = args[0] as string | { text: string; values?: unknown[] };
      if (typeof first !== 'string' && /^UPDATE tasks AS t/.test(first.text)) {
        sent.push({ text: first.text, values: first.values ?? [] });
      }
      return original.apply(this, args);
    });
    let started: unknown[];
    try {
      // One of them is no longer queued: its guard still holds for it alone.
      await db.pg.query(`UPDATE tasks SET status = 'cancelled' WHERE id = $1`, [batch[7]]);
      started = await Promise.all(
        batch.map((id) =>
          repo.transition(
            id,
            [TaskStatus.Queued],
            TaskStatus.Processing,
            {},
            {
              event: TaskEventType.Started,
              incrementAttempts: true,
              at: new Date(),
            },
          ),
        ),
      );
    } finally {
      spy.mockRestore();
    }
    expect(started.map((s) => s !== null)).toEqual(batch.map((_, i) => i !== 7));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(batch.length);
    const { rows: statuses } = await db.pg.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM tasks WHERE id = ANY($1) GROUP BY status ORDER BY status`,
      [batch],
    );
    expect(statuses).toEqual([
      { status: 'cancelled', n: 1 },
      { status: 'processing', n: 59 },
    ]);
    const statement = sent[sent.length - 1];
    for (const plan of await plansOf(db.pg, statement.text, statement.values)) {
      const used = planNodes(plan).map((n) => `${n['Node Type']} ${n['Index Name'] ?? ''}`);
      expect(used).not.toContainEqual(expect.stringMatching(/status_idx|unfinished_idx|Seq Scan/));
      expect(used).toContainEqual(expect.stringMatching(/tasks_pkey/));
    }
  });
});
