import { Client } from 'pg';
import { CreditsRepository } from '../src/credits/credits.repository';
import { TasksRepository } from '../src/tasks/tasks.repository';
import { PlanNode, planNodes, plansOf, repositoryDatabase, RepositoryDatabase } from './support/plans';

/**
 * The reads whose cost must not grow with the `tasks` table (a task by id, the first and a deep page of a user's
 * list, a user's statistics, the reconciler's scan, a queued task's position) are planned on indexes: on a table of
 * 40,000 tasks of 500 users, each statement the repository sends (captured on its way to Postgres, so the checked
 * SQL is the code's, not a copy) is EXPLAINed with its own parameters, as a custom plan and as the generic plan a
 * prepared statement falls back to. GET /statistics?scope=all (admins) aggregates every task, so it is not among them.
 */
const ROWS = 40_000;
const USER = 'heavy-user';

/** A statement as the `pg` driver received it. */
interface Sent {
  text: string;
  values: unknown[];
}

/** What a read's plans must show: the index it walks, and whether the heap may be read at all. */
interface Expectation {
  index: string;
  /** The plan never reads the table's rows (an index-only scan): its cost is the index entries it walks. */
  indexOnly?: boolean;
  /** Rows come in the index's order (keyset pages): no Sort over the matching rows. */
  ordered?: boolean;
}

/** What is wrong with a plan of `tasks` for `expected`, or [] when nothing is. */
function violations(plan: PlanNode, expected: Expectation): string[] {
  const all = planNodes(plan);
  const problems: string[] = [];
  for (const node of all) {
    if (node['Node Type'] === 'Seq Scan') problems.push(`Seq Scan on ${node['Relation Name']}`);
    if (expected.indexOnly && /^(Index Scan|Bitmap Heap Scan)$/.test(node['Node Type'])) {
      problems.push(`${node['Node Type']} reads the heap`);
    }
    if (expected.ordered && node['Node Type'] === 'Sort') problems.push('Sort: the index does not give the order');
  }
  if (!all.some((node) => node['Index Name'] === expected.index)) {
    problems.push(`${expected.index} not used (${all.map((n) => n['Index Name'] ?? n['Node Type']).join(', ')})`);
  }
  return problems;
}

describe('query plans of the reads that must not grow with the tasks table', () => {
  let db: RepositoryDatabase;
  let repo: TasksRepository;
  let explainer: Client;

  beforeAll(async () => {
    db = await repositoryDatabase();
    const { config, dataSource, sql } = db;
    repo = new TasksRepository(dataSource, sql, new CreditsRepository(config, sql, dataSource));
    explainer = db.pg;
    // History in creation order, as the API appends it: every 20th task is the heavy user's (2,000), the rest spread
    // over 499 users; mostly completed, some failed and cancelled; the newest 100 still queued or processing.
    await explainer.query(
      `INSERT INTO tasks (id, user_id, type, status, priority, input, output, provider, cost_amount, cost_currency,
                          event_seq, created_at, updated_at, started_at, completed_at)
       SELECT gen_random_uuid(), CASE WHEN i % 20 = 0 THEN $2 ELSE 'user-' || (i % 499) END,
              (ARRAY['image_generation', 'subtitle_generation', 'audio_transcription', 'img2vid'])[1 + i % 4],
              s.status, CASE WHEN i % 17 = 0 THEN 'high' ELSE 'medium' END, '{"prompt": "a fox"}',
              CASE WHEN s.status = 'completed' THEN '{"files": [{"key": "out.png"}]}'::jsonb END,
              CASE WHEN s.status <> 'queued' THEN 'openai' END,
              CASE WHEN s.status = 'completed' THEN 0.04 END, CASE WHEN s.status = 'completed' THEN 'USD' END,
              3, t.created, t.created + interval '10 s', t.created + interval '1 s',
              CASE WHEN s.status IN ('completed', 'failed') THEN t.created + interval '10 s' END
         FROM generate_series(1, $1::int) AS i,
              LATERAL (SELECT now() - (($1::int - i) * interval '5 minutes') - interval '1 minute' AS created) AS t,
              LATERAL (SELECT CASE WHEN i > $1::int - 100 THEN (CASE WHEN i % 4 = 1 THEN 'processing' ELSE 'queued' END)
                                   WHEN i % 10 = 7 THEN 'failed' WHEN i % 33 = 5 THEN 'cancelled'
                                   ELSE 'completed' END AS status) AS s`,
      [ROWS, USER],
    );
    // As autovacuum leaves a table that grew: statistics gathered, old pages all-visible (index-only scans need that).
    await explainer.query('VACUUM ANALYZE tasks');
  }, 120_000);

  afterAll(async () => {
    await db?.close();
  });

  /** The statements on `tasks` that `read` sends to Postgres, with their parameters. */
  async function sentBy(read: () => Promise<unknown>): Promise<Sent[]> {
    const sent: Sent[] = [];
    const original = Client.prototype.query as (...args: unknown[]) => unknown;
    function recorded(this: Client, ...args: unknown[]): unknown {
      const [first, second] = args as [string | { text: string; values?: unknown[] }, unknown];
      const statement = typeof first === 'string' ? { text: first, values: second } : first;
      if (/\bFROM\s+"?tasks"?/i.test(statement.text)) {
        sent.push({ text: statement.text, values: Array.isArray(statement.values) ? statement.values : [] });
      }
      return original.apply(this, args);
    }
    const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(recorded);
    try {
      await read();
    } finally {
      spy.mockRestore();
    }
    expect(sent.length).toBeGreaterThan(0);
    return sent;
  }

  const plansOfSent = ({ text, values }: Sent): Promise<PlanNode[]> => plansOf(explainer, text, values);

  async function problemsOf(statements: Sent[], expected: Expectation): Promise<string[]> {
    const problems: string[] = [];
    for (const statement of statements) {
      for (const plan of await plansOfSent(statement)) {
        problems.push(...violations(plan, expected).map((p) => `${p} in: ${statement.text.replace(/\s+/g, ' ')}`));
      }
    }
    return problems;
  }

  async function check(read: () => Promise<unknown>, expected: Expectation): Promise<string[]> {
    return problemsOf(await sentBy(read), expected);
  }

  async function someTask(status: string): Promise<{ id: string }> {
    const { rows } = await explainer.query<{ id: string }>(
      `SELECT id FROM tasks WHERE user_id = $1 AND status = $2 LIMIT 1`,
      [USER, status],
    );
    return rows[0];
  }

  it('reads a task by id through the primary key', async () => {
    const { id } = await someTask('completed');
    expect(await check(() => repo.findOwned(id, USER), { index: 'tasks_pkey' })).toEqual([]);
  });

  it("reads a user's first page and a deep page (the 6th, by cursor) in the order of their index", async () => {
    const listing = { index: 'tasks_user_created_idx', ordered: true };
    expect(await check(() => repo.list({ userId: USER, limit: 20 }), listing)).toEqual([]);
    let after: { createdAt: Date; id: string } | undefined;
    for (let page = 1; page <= 5; page++) {
      const { rows } = await repo.list({ userId: USER, limit: 20, after });
      after = { createdAt: rows[rows.length - 1].createdAt, id: rows[rows.length - 1].id };
    }
    expect(await check(() => repo.list({ userId: USER, limit: 20, after }), listing)).toEqual([]);
    // An admin's list of everyone's tasks, newest first.
    const everyone = { index: 'tasks_created_idx', ordered: true };
    expect(await check(() => repo.list({ limit: 20 }), everyone)).toEqual([]);
  });

  it("aggregates a user's statistics from index entries alone (no row of the table is read)", async () => {
    const stats = await repo.statistics(USER);
    expect(stats.byStatus.completed).toBeGreaterThan(1000);
    expect(await check(() => repo.statistics(USER), { index: 'tasks_user_statistics_idx', indexOnly: true })).toEqual(
      [],
    );
  });

  it("finds the reconciler's stale tasks and a queued task's position among the unfinished ones only", async () => {
    const stale = await repo.findStale(15_000, 500);
    expect(stale.length).toBe(100);
    const unfinished = /^tasks_(unfinished|user_unfinished|status)_idx$/;
    const anyUnfinished = async (read: () => Promise<unknown>) => {
      const problems: string[] = [];
      for (const statement of await sentBy(read)) {
        for (const plan of await plansOfSent(statement)) {
          const used = planNodes(plan).map((n) => n['Index Name'] ?? '');
          if (!used.some((name) => unfinished.test(name)))
            problems.push(`no index of unfinished tasks: ${used.join(', ')}`);
          problems.push(...planNodes(plan).flatMap((n) => (n['Node Type'] === 'Seq Scan' ? ['Seq Scan'] : [])));
        }
      }
      return problems;
    };
    expect(await anyUnfinished(() => repo.findStale(15_000, 500))).toEqual([]);
    const queued = await repo.findById((await someTask('queued')).id);
    expect(await anyUnfinished(() => repo.queuePosition(queued!))).toEqual([]);
  });

  it('fails when an index those reads need is gone', async () => {
    const statistics = await sentBy(() => repo.statistics(USER));
    const firstPage = await sentBy(() => repo.list({ userId: USER, limit: 20 }));
    // Dropped in a transaction rolled back: the repository's reads would wait on its lock, so they were sent before.
    await explainer.query('BEGIN');
    try {
      await explainer.query('DROP INDEX tasks_user_statistics_idx');
      await explainer.query('DROP INDEX tasks_user_created_idx');
      const stats = { index: 'tasks_user_statistics_idx', indexOnly: true };
      expect(await problemsOf(statistics, stats)).not.toEqual([]);
      const listing = { index: 'tasks_user_created_idx', ordered: true };
      expect(await problemsOf(firstPage, listing)).not.toEqual([]);
    } finally {
      await explainer.query('ROLLBACK');
    }
  });
});
