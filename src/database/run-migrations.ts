import { AppConfig } from '../config/app-config';
import { createDataSource } from './data-source';
import { ensureDatabase, runMigrations } from './database-bootstrap';

/** `npm run migration:run`: create the database if missing and apply pending migrations, then exit. */
async function main(): Promise<void> {
  const config = AppConfig.fromProcess();
  await ensureDatabase(config.databaseUrl);
  const dataSource = await createDataSource(config.databaseUrl, 2).initialize();
  try {
    const applied = await runMigrations(dataSource);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'no pending migrations\n');
  } finally {
    await dataSource.destroy();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
