import { createDataSource } from '../../src/database/data-source';
import { runMigrations } from '../../src/database/database-bootstrap';
import { databaseUrl, templateDb, testRunId, withAdmin } from './databases';

/**
 * Once per `jest` run: build the migrated template database every test file clones, and drop databases left behind
 * by runs that are over (their pid is in the name; a run still going keeps its own).
 */
export default async function globalSetup(): Promise<void> {
  process.env.MEDIA_TEST_RUN = String(process.pid); // inherited by the test workers
  await withAdmin(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'media\\_test\\_%'`,
    );
    for (const { datname } of rows) {
      const run = /^media_test_(\d+)_/.exec(datname)?.[1];
      if (run && run !== testRunId() && isAlive(Number(run))) continue;
      await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    }
    await client.query(`CREATE DATABASE ${templateDb()}`);
  });
  const dataSource = await createDataSource(databaseUrl(templateDb()), 2).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
