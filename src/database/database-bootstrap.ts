import { runMigrations as runBullMqMigrations } from 'bullmq';
import { Client, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { BULLMQ_SCHEMA } from '../queue/queue.constants';

/** Creates the database named in `url` when it does not exist yet (connecting to the `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        // Another process created it between the check and the create.
        if (err.code !== '42P04') throw err;
      });
    }
  } finally {
    await client.end();
  }
}

// Any fixed number: every process that migrates takes the same advisory lock, so migrations run once.
const MIGRATION_LOCK = 7_311_002;

/**
 * Applies pending migrations under a Postgres advisory lock, so processes booting together migrate once: the
 * platform's, then BullMQ's own schema (its tables for QUEUE_BACKEND=postgres, made whatever the backend, so a
 * deployment can move its queues to Postgres without a step of its own). BullMQ ships its schema as versions that
 * its migrator applies in one transaction, and only a newer BullMQ brings new ones, so they are not copied into
 * migrations/.
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  // TypeORM's Postgres runner hands back the pg connection it holds: BullMQ's migrator needs one session.
  const connection = (await runner.connect()) as PoolClient;
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    await runBullMqMigrations(connection, BULLMQ_SCHEMA);
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
