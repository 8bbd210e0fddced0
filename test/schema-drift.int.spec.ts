import { DataSource } from 'typeorm';
import { createDataSource } from '../src/database/data-source';
import { runMigrations } from '../src/database/database-bootstrap';
import { databaseUrl, dropTestDatabase, testRunId, withAdmin } from './support/databases';

/**
 * The entities and the migrations describe the same schema: on a database built by the migrations alone, TypeORM's
 * schema builder (what `synchronize` would run) finds nothing to change. A column, default, index, unique or foreign
 * key that differs between the two shows up here as a query it would run.
 */
describe('entities and migrations', () => {
  const name = `media_test_${testRunId()}_drift_${process.hrtime.bigint().toString(36)}`;
  let dataSource: DataSource;

  beforeAll(async () => {
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    dataSource = await createDataSource(databaseUrl(name), 2).initialize();
    await runMigrations(dataSource);
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await dropTestDatabase(name);
  });

  it('leave the schema builder nothing to change', async () => {
    const log = await dataSource.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
  });

  // The schema builder compares an index by name, uniqueness and column set, and a check by name: the order of an
  // index's columns, its WHERE and a check's expression are compared here, each declared one put to Postgres (in a
  // transaction rolled back) so that both sides come back in Postgres' own words.
  it('declare the indexes and checks the migrations make, column order and conditions included', async () => {
    const runner = dataSource.createQueryRunner();
    try {
      for (const meta of dataSource.entityMetadatas) {
        for (const index of meta.indices) {
          const [made] = await runner.query(`SELECT indexdef FROM pg_indexes WHERE indexname = $1`, [index.name]);
          await runner.startTransaction();
          const columns = index.columns.map((c) => `"${c.databaseName}"`).join(', ');
          await runner.query(
            `CREATE ${index.isUnique ? 'UNIQUE ' : ''}INDEX drift_probe ON ${meta.tableName} (${columns})` +
              (index.where ? ` WHERE ${index.where}` : ''),
          );
          const [declared] = await runner.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'drift_probe'`);
          await runner.rollbackTransaction();
          // Entities cannot declare a column's DESC order: that part of a listing index lives in its migration only.
          expect(made?.indexdef.replace(/ DESC/g, '')).toBe(declared.indexdef.replace('drift_probe', index.name));
        }
        for (const check of meta.checks) {
          const def = `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = $1`;
          const [made] = await runner.query(def, [check.name]);
          await runner.startTransaction();
          await runner.query(`ALTER TABLE ${meta.tableName} ADD CONSTRAINT drift_probe CHECK (${check.expression})`);
          const [declared] = await runner.query(def, ['drift_probe']);
          await runner.rollbackTransaction();
          expect(made?.def).toBe(declared.def);
        }
      }
    } finally {
      await runner.release();
    }
  });

  // Only the public schema is ours: the `bullmq` schema holds BullMQ's own tables (QUEUE_BACKEND=postgres), made by
  // BullMQ's migrator and described by BullMQ, not by entities.
  it('cover every table the migrations make', async () => {
    const rows = await dataSource.query<{ table_name: string }[]>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations'`,
    );
    const tables = dataSource.entityMetadatas.map((m) => m.tableName).sort();
    expect(tables).toEqual(rows.map((r) => r.table_name).sort());
  });

  it("make BullMQ's schema with the platform's", async () => {
    const [row] = await dataSource.query<{ job: string | null }[]>(`SELECT to_regclass('bullmq.job')::text AS job`);
    expect(row.job).toBe('bullmq.job');
  });
});
