import 'reflect-metadata';
import { createApp } from './app.factory';
import { AppConfig } from './config/app-config';
import { ConfigError } from './config/env.schema';
import { createDataSource } from './database/data-source';
import { ensureDatabase, runMigrations } from './database/database-bootstrap';
import { knobsFromEnv, runpodExecutionFromEnv, Sandbox, startSandbox } from './providers/sandbox/sandbox';
import { ShutdownOnSignal } from './shutdown';

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
  const shutdown = ShutdownOnSignal.install(config.shutdownTimeoutMs);
  let sandbox: Sandbox | undefined;
  if (config.providersMode === 'sandbox') {
    // Emulators first: the adapters' base URLs and keys are theirs.
    sandbox = await startSandbox({
      basePort: config.sandboxPort,
      knobs: knobsFromEnv(process.env),
      runpodExecution: runpodExecutionFromEnv(process.env),
      ffmpeg: config.ffmpeg,
      allowPrivateAddresses: config.allowPrivateAddresses,
    });
    config = AppConfig.fromEnv({ ...process.env, ...sandbox.env });
    process.stdout.write(
      `sandbox: provider emulators ${sandbox.hosted ? 'started' : 'shared with another process'} on ports from ${config.sandboxPort}` +
        (sandbox.hosted ? `, RunPod jobs ${sandbox.runpodExecution}\n` : '\n'),
    );
  }
  await ensureDatabase(config.databaseUrl);
  const dataSource = await createDataSource(config.databaseUrl, 2).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  const app = await createApp(config, { sandbox });
  shutdown.attach(app);
  await app.listen({ port: config.port, host: config.host });
}

bootstrap().catch((err: Error) => {
  process.stderr.write(`boot failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
