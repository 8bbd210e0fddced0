import { createDataSource } from '../../src/database/data-source';
import { runMigrations } from '../../src/database/database-bootstrap';
import { ServicesMissingError } from '../../src/embedded-services/missing-services';
import { databaseUrl, templateDb, testRunId, withAdmin } from './databases';
import { provideTestServices } from './test-services';

/** What the global setup started, for the global teardown (both run in Jest's main process). */
export const TEST_SERVICES = Symbol.for('media-tasks.test-services');

/**
 * Once per `jest` run: make sure Postgres and Redis are there (starting them when nothing answers, see
 * test-services.ts), build the migrated template database every test file clones, and drop databases left behind by
 * runs that are over (their pid is in the name; a run still going keeps its own).
 */
export default async function globalSetup(globalConfig: { testPathPatterns?: { patterns?: string[] } }): Promise<void> {
  process.env.MEDIA_TEST_RUN = String(process.pid); // inherited by the test workers
  const wholeSuite = (globalConfig.testPathPatterns?.patterns ?? []).length === 0;
  let services;
  try {
    services = await provideTestServices(wholeSuite);
  } catch (err) {
    // Jest prints a failed setup's stack; the paragraph alone says what to do.
    if (err instanceof ServicesMissingError) err.stack = err.paragraph;
    throw err;
  }
  // Platform processes the tests spawn get the suite's URLs and must use them, not start servers of their own.
  delete process.env.EMBEDDED_SERVICES;
  if (services.started.length > 0) {
    (globalThis as Record<symbol, unknown>)[TEST_SERVICES] = services;
    process.once('exit', () => services.stopNow());
    // Inherited by the test workers, which Jest starts after this.
    process.env.TEST_PG_URL = services.urls.databaseUrl;
    process.env.TEST_REDIS_URL = services.urls.redisUrl;
  }
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
