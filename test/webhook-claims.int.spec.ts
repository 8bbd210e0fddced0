import { Sql, SqlClient } from '../src/database/sql-client';
import { AttemptRecord, WebhookDeliveriesRepository } from '../src/webhooks/webhook-deliveries.repository';
import { planNodes, plansOf, repositoryDatabase, RepositoryDatabase } from './support/plans';

/**
 * The claims and records of first attempts share statements between the concurrent senders of a process: what each
 * sender gets must be what it would get alone (a line's deliveries in sequence order, one sender per delivery), and
 * the statements must find their rows by primary key even when the table's statistics know nothing of a backlog.
 */
const BACKLOG = 3000;
const LEASE_MS = 35_000;

function delivered(): AttemptRecord {
  return {
    attempt: { at: new Date().toISOString(), status_code: 200, duration_ms: 3, error: null, response_excerpt: null },
    status: 'delivered',
    nextAttemptAt: null,
  };
}

describe('webhook delivery claims and records, grouped', () => {
  let db: RepositoryDatabase;
  let repo: WebhookDeliveriesRepository;
  /** The statements the repository sent, with their parameters. */
  const sent: { text: string; values: readonly unknown[] }[] = [];
  /** Statements under way at once: now, and the most since the test began. */
  const inFlight = { now: 0, most: 0 };

  /** Writes `count` tasks with a line of `perLine` first attempts each; answers each line's delivery ids in order. */
  async function lines(count: number, perLine: number): Promise<string[][]> {
    const { rows } = await db.pg.query<{ task_id: string; ids: string[] }>(
      `WITH t AS (
         INSERT INTO tasks (id, user_id, type, status, priority, input, created_at, updated_at)
         SELECT gen_random_uuid(), 'alice', 'subtitle_generation', 'queued', 'medium', '{}', now(), now()
           FROM generate_series(1, $1::int)
         RETURNING id),
       d AS (
         INSERT INTO webhook_deliveries (id, task_id, user_id, event_type, sequence, url, body, next_attempt_at,
                                         created_at, updated_at)
         SELECT gen_random_uuid(), t.id, 'alice', 'task.created', s, 'https://hooks.example.com/in', '{}', now(),
                now(), now()
           FROM t, generate_series(1, $2::int) AS s
         RETURNING id, task_id, sequence)
       SELECT task_id, array_agg(id ORDER BY sequence) AS ids FROM d GROUP BY task_id`,
      [count, perLine],
    );
    return rows.map((row) => row.ids);
  }

  beforeAll(async () => {
    db = await repositoryDatabase();
    const { sql } = db;
    const counting: Sql & Pick<SqlClient, 'table'> = {
      rows: async (text, values) => {
        sent.push({ text, values: values ?? [] });
        inFlight.most = Math.max(inFlight.most, ++inFlight.now);
        try {
          return await sql.rows(text, values);
        } finally {
          inFlight.now--;
        }
      },
      table: (entity) => sql.table(entity),
    };
    repo = new WebhookDeliveriesRepository(counting as SqlClient);
    // Statistics gathered while every delivery had been delivered; then a backlog of first attempts builds up that
    // they know nothing of (autovacuum has not analyzed the table since).
    const quiet = await lines(200, 1);
    await db.pg.query(`UPDATE webhook_deliveries SET attempts = 1, status = 'delivered' WHERE id = ANY($1)`, [
      quiet.flat(),
    ]);
    await db.pg.query('VACUUM ANALYZE webhook_deliveries');
  }, 60_000);

  afterAll(async () => {
    await db?.close();
  });

  beforeEach(() => {
    sent.length = 0;
    inFlight.most = 0;
  });

  it('holds one connection for the claims and one for the records, however many senders there are', async () => {
    const backlog = (await lines(80, 2)).map(([first]) => first);
    const claims = await Promise.all(backlog.map((id) => repo.claimNextFirst(id, LEASE_MS)));
    expect(claims.every((c) => c.claimed)).toBe(true);
    expect(inFlight.most).toBe(1);
    // Records, and the claims of other lines, at the same time: one statement of each kind.
    const others = (await lines(40, 1)).flat();
    inFlight.most = 0;
    const [records] = await Promise.all([
      Promise.all(backlog.map((id) => repo.recordAttempt(id, delivered(), LEASE_MS))),
      Promise.all(others.map((id) => repo.claimNextFirst(id, LEASE_MS))),
    ]);
    expect(records.every((next) => next !== null)).toBe(true); // each record claimed its line's second delivery
    expect(inFlight.most).toBe(2);
  });

  it('claims many lines at once in fewer statements than claims, each delivery leased once', async () => {
    const backlog = (await lines(BACKLOG, 1)).flat();
    const wanted = backlog.slice(0, 60);
    const claims = await Promise.all(wanted.map((id) => repo.claimNextFirst(id, LEASE_MS)));
    expect(claims.map((c) => c.claimed?.delivery.id)).toEqual(wanted);
    expect(sent.length).toBeLessThan(wanted.length);
    expect(sent.length).toBeGreaterThan(0);
    const { rows } = await db.pg.query<{ leased: number }>(
      `SELECT count(*)::int AS leased FROM webhook_deliveries WHERE lease_until > now() AND id = ANY($1)`,
      [wanted],
    );
    expect(rows[0].leased).toBe(60);
    // Claimed again (another job of the same delivery): held, nothing claimed twice.
    const again = await Promise.all(wanted.slice(0, 5).map((id) => repo.claimNextFirst(id, LEASE_MS)));
    expect(again.map((c) => c.claimed)).toEqual([null, null, null, null, null]);
  });

  it("gives a line's first delivery to one of its concurrent claims, and the next one with that delivery's record", async () => {
    const [line] = await lines(1, 3);
    const [others] = [await lines(20, 1)];
    // The line's three deliveries and twenty other lines claimed at once: the other twenty all go.
    const claims = await Promise.all([...line, ...others.flat()].map((id) => repo.claimNextFirst(id, LEASE_MS)));
    const ofLine = claims.slice(0, 3);
    // Whichever claim came first leased the line's first delivery (its own or the one ahead of it), and only one did.
    expect(ofLine.filter((c) => c.claimed).map((c) => c.claimed!.delivery.id)).toEqual([line[0]]);
    // The others send nothing; those whose own delivery still waits behind it are told so (to look again later).
    ofLine.forEach((c, i) => {
      if (!c.claimed) expect(c.ownWaiting).toBe(i > 0);
    });
    expect(claims.slice(3).every((c) => c.claimed)).toBe(true);
    sent.length = 0;
    // Recorded together with the other lines' records: the line's record claims its second delivery, the others none.
    const nexts = await Promise.all(
      [line[0], ...others.flat()].map((id) => repo.recordAttempt(id, delivered(), LEASE_MS)),
    );
    expect(nexts[0]?.delivery.id).toBe(line[1]);
    expect(nexts[0]?.delivery.sequence).toBe(2);
    expect(nexts.slice(1)).toEqual(others.flat().map(() => null));
    expect(sent.length).toBeLessThan(nexts.length);
    const { rows } = await db.pg.query<{ id: string; status: string; attempts: number; leased: boolean }>(
      `SELECT id, status, attempts, lease_until > now() AS leased FROM webhook_deliveries WHERE id = ANY($1)`,
      [line],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(line[0])).toMatchObject({ status: 'delivered', attempts: 1, leased: null });
    expect(byId.get(line[1])).toMatchObject({ status: 'pending', attempts: 0, leased: true });
    expect(byId.get(line[2])).toMatchObject({ status: 'pending', attempts: 0, leased: null });
  });

  it('records each attempt of a group even when one of them cannot be written', async () => {
    const ids = (await lines(10, 1)).flat();
    await Promise.all(ids.map((id) => repo.claimNextFirst(id, LEASE_MS)));
    const bad = { ...delivered(), status: 'lost' as AttemptRecord['status'] }; // the table's check refuses it
    const outcomes = await Promise.allSettled(
      ids.map((id, i) => repo.recordAttempt(id, i === 4 ? bad : delivered(), LEASE_MS)),
    );
    expect(outcomes.map((o) => o.status)).toEqual(ids.map((_, i) => (i === 4 ? 'rejected' : 'fulfilled')));
    const { rows } = await db.pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhook_deliveries WHERE id = ANY($1) AND status = 'delivered'`,
      [ids],
    );
    expect(rows[0].n).toBe(9);
  });

  it('records an answer with a NUL byte (which Postgres text refuses) with the byte replaced', async () => {
    const [[id]] = await lines(1, 1);
    await repo.claimNextFirst(id, LEASE_MS);
    const failed: AttemptRecord = {
      attempt: {
        at: new Date().toISOString(),
        status_code: 500,
        duration_ms: 4,
        error: 'HTTP 500 \u0000',
        response_excerpt: 'a\u0000b',
      },
      status: 'failed',
      nextAttemptAt: new Date(Date.now() + 60_000),
    };
    await repo.recordAttempt(id, failed, LEASE_MS);
    const delivery = await repo.find(id);
    expect(delivery).toMatchObject({
      status: 'failed',
      attempts: 1,
      lastStatusCode: 500,
      lastError: 'HTTP 500 \uFFFD',
    });
    expect(delivery!.attemptLog[0]).toMatchObject({ response_excerpt: 'a\uFFFDb', error: 'HTTP 500 \uFFFD' });
  });

  it('finds the rows it leases by primary key, whatever the statistics say about waiting rows', async () => {
    const ids = (await lines(8, 1)).flat();
    await Promise.all(ids.map((id) => repo.claimNextFirst(id, LEASE_MS)));
    const claim = sent.find((s) => /unnest\(\$1::uuid\[\]\)/.test(s.text))!;
    await Promise.all(ids.map((id) => repo.recordAttempt(id, delivered(), LEASE_MS)));
    const record = sent.find((s) => /jsonb_to_recordset/.test(s.text))!;
    for (const statement of [claim, record]) {
      for (const plan of await plansOf(db.pg, statement.text, statement.values)) {
        const updates = planNodes(plan).filter((n) => n['Node Type'] === 'ModifyTable');
        expect(updates.length).toBeGreaterThan(0);
        for (const update of updates) {
          const reads = planNodes(update).filter((n) => n !== update && (n['Relation Name'] || n['Index Name']));
          expect(reads.map((n) => `${n['Node Type']} ${n['Index Name'] ?? n['Relation Name']}`)).not.toContainEqual(
            expect.stringMatching(/Seq Scan|order_idx|status_idx/),
          );
          expect(reads.some((n) => n['Index Name'] === 'webhook_deliveries_pkey')).toBe(true);
        }
      }
    }
  });
});
