import { repositoryDatabase, RepositoryDatabase } from './support/plans';

/**
 * SqlClient's transactions pipeline: BEGIN goes out with the first statement, and a statement sent with `send` goes
 * out with the COMMIT behind it, unanswered. What must hold is what a transaction promises.
 */
describe('SqlClient transactions', () => {
  let db: RepositoryDatabase;

  beforeAll(async () => {
    db = await repositoryDatabase();
    await db.pg.query('CREATE TABLE pipelined (id int PRIMARY KEY, note text NOT NULL)');
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(async () => {
    await db.pg.query('TRUNCATE pipelined');
  });

  const ids = async () =>
    (await db.pg.query<{ id: number }>('SELECT id FROM pipelined ORDER BY id')).rows.map((r) => r.id);

  it('commits the statements waited for and those sent without waiting, in order', async () => {
    const result = await db.sql.transaction(async (tx) => {
      const [first] = await tx.rows<{ id: number }>(`INSERT INTO pipelined VALUES (1, 'a') RETURNING id`);
      tx.send(`INSERT INTO pipelined VALUES ($1, 'b')`, [2]);
      tx.send(`UPDATE pipelined SET note = note || '+' WHERE id = 2`);
      return first.id;
    });
    expect(result).toBe(1);
    expect(await ids()).toEqual([1, 2]);
    const { rows } = await db.pg.query<{ note: string }>('SELECT note FROM pipelined WHERE id = 2');
    expect(rows[0].note).toBe('b+');
  });

  it('rolls everything back and throws the error of a sent statement that failed', async () => {
    await db.pg.query(`INSERT INTO pipelined VALUES (5, 'there')`);
    await expect(
      db.sql.transaction(async (tx) => {
        await tx.rows(`INSERT INTO pipelined VALUES (3, 'kept?')`);
        tx.send(`INSERT INTO pipelined VALUES (5, 'duplicate')`);
        tx.send(`INSERT INTO pipelined VALUES (6, 'after it')`);
        return 'done';
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await ids()).toEqual([5]);
    // The connection went back to the pool clean: every connection of it runs the next transaction.
    await Promise.all(
      [10, 11, 12].map((id) => db.sql.transaction((tx) => tx.rows(`INSERT INTO pipelined VALUES ($1, 'x')`, [id]))),
    );
    expect(await ids()).toEqual([5, 10, 11, 12]);
  });

  it('rolls back what was sent when the work throws afterwards', async () => {
    await expect(
      db.sql.transaction(async (tx) => {
        tx.send(`INSERT INTO pipelined VALUES (7, 'sent')`);
        await tx.rows('SELECT 1');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await ids()).toEqual([]);
  });

  it('does not commit work that swallowed a failed statement: the transaction was aborted', async () => {
    await expect(
      db.sql.transaction(async (tx) => {
        await tx.rows(`INSERT INTO pipelined VALUES (8, 'first')`);
        await tx.rows('SELECT 1 / 0').catch(() => undefined);
        return 'looks fine';
      }),
    ).rejects.toThrow(/not committed: ROLLBACK/);
    expect(await ids()).toEqual([]);
  });

  it('runs statements of concurrent transactions on their own connections, isolated until each commits', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = db.sql.transaction(async (tx) => {
      await tx.rows(`INSERT INTO pipelined VALUES (20, 'slow')`);
      await held;
      tx.send(`INSERT INTO pipelined VALUES (21, 'slow')`);
    });
    await db.sql.transaction((tx) => tx.rows(`INSERT INTO pipelined VALUES (30, 'fast')`));
    expect(await ids()).toEqual([30]);
    release();
    await slow;
    expect(await ids()).toEqual([20, 21, 30]);
  });
});
