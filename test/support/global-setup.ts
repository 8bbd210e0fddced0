import { createDataSource } from '../../src/database/data-source';
import { runMigrations } from '../../src/database/database-bootstrap';
import { databaseUrl, TEMPLATE_DB, withAdmin } from './databases';

/**
 * Once per `jest` run: (re)build the migrated template database every test file clones, and drop databases left
 * behind by interrupted runs.
 */
export default async function globalSetup(): Promise<void> {
  await withAdmin(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'media\\_test\\_%'`,
    );
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  });
  const dataSource = await createDataSource(databaseUrl(TEMPLATE_DB), 2).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
}
