import 'reflect-metadata';
import { createApp } from './app.factory';
import { AppConfig } from './config/app-config';
import { ConfigError } from './config/env.schema';
import { createDataSource } from './database/data-source';
import { ensureDatabase, runMigrations } from './database/database-bootstrap';

/** `npm start`: validate the configuration, create the database if missing, migrate, then serve and/or work. */
async function bootstrap(): Promise<void> {
  let config: AppConfig;
  try {
    config = AppConfig.fromProcess();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  await ensureDatabase(config.databaseUrl);
  const dataSource = await createDataSource(config.databaseUrl, 2).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  const app = await createApp(config);
  await app.listen({ port: config.port, host: config.host });
}

bootstrap().catch((err: Error) => {
  process.stderr.write(`boot failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
