import 'reflect-metadata';
// First: with OTEL_EXPORTER_OTLP_ENDPOINT set, tracing starts before the modules it instruments are loaded.
import { tracing } from './telemetry/start-telemetry';
import { stopTelemetry } from './telemetry/telemetry';
import type { DynamicModule } from '@nestjs/common';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { AppConfig } from './config/app-config';
import { ConfigError, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from './config/env.schema';
import { listenAddress } from './config/listen-address';
import { describeServices, provideServices, ServiceUrls } from './embedded-services/embedded-services';
import { ServicesMissingError } from './embedded-services/missing-services';
import { probeRedis } from './embedded-services/probes';
import { resolveQueueBackend } from './embedded-services/service-plan';
import { ShutdownOnSignal } from './shutdown';

export interface BootOptions {
  /** Where DATABASE_URL and REDIS_URL point when left alone (the schema's defaults; tests aim them elsewhere). */
  defaults?: ServiceUrls;
}

/**
 * `npm start`: validate the configuration, decide where the queues live (QUEUE_BACKEND), make sure Postgres and,
 * for queues on Redis, Redis are there (starting them here in development when nothing answers at the defaults),
 * create the database if missing, migrate, then serve and/or work.
 */
export async function bootstrap(options: BootOptions = {}): Promise<void> {
  limitHeapGrowth();
  let config = AppConfig.fromProcess();
  // From here on a signal ends the process within SHUTDOWN_TIMEOUT_MS, whatever Postgres and Redis are doing.
  const shutdown = ShutdownOnSignal.install(config.shutdownTimeoutMs);
  // The spans still buffered go out once the app has closed (its last spans included).
  if (tracing) shutdown.afterClose(() => stopTelemetry());
  const defaults = options.defaults ?? { databaseUrl: DEFAULT_DATABASE_URL, redisUrl: DEFAULT_REDIS_URL };
  const redisUrlSet = !!process.env.REDIS_URL;
  const queueBackend = await resolveQueueBackend({
    setting: config.queueBackend,
    redisUrlSet,
    redisUrl: redisUrlSet ? config.redisUrl : defaults.redisUrl,
    probeRedis: (url) => probeRedis(url),
  });
  const services = await provideServices({
    queueBackend,
    mode: config.embeddedServices,
    urls: { databaseUrl: config.databaseUrl, redisUrl: config.redisUrl },
    defaults,
    dataRoot: resolve('data'),
    durable: true,
    subject: 'The platform',
  });
  if (services.started.length > 0) {
    // The servers started here stop after the application has closed, or are told to on any other exit.
    process.once('exit', () => services.stopNow());
    shutdown.afterClose(() => services.stop());
  }
  const env = {
    ...process.env,
    DATABASE_URL: services.urls.databaseUrl,
    REDIS_URL: services.urls.redisUrl,
    QUEUE_BACKEND: queueBackend,
  };
  config = AppConfig.fromEnv(env);

  // Loaded only now, so a missing service is reported before the application's modules are.
  const { createApp } = await import('./app.factory');
  const { createDataSource } = await import('./database/data-source');
  const { ensureDatabase, runMigrations } = await import('./database/database-bootstrap');

  const providers = config.providersModeDefaulted
    ? 'providers: sandbox (no provider key set; set one or PROVIDERS_MODE=live for real providers)'
    : `providers: ${config.providersMode}`;
  const modules: DynamicModule[] = [];
  if (config.providersMode === 'sandbox') {
    // The only place the application loads the sandbox (sandbox/, beside src/): a live deployment never does.
    const { SandboxModule, startSandboxForApp } = await import('../sandbox/sandbox.module');
    // Emulators first: the adapters' base URLs and keys are theirs.
    const sandbox = await startSandboxForApp(config, process.env);
    // The emulators' keys would turn PROVIDERS_MODE=auto into live.
    config = AppConfig.fromEnv({ ...env, ...sandbox.env, PROVIDERS_MODE: 'sandbox' });
    modules.push(SandboxModule.forRoot(sandbox, config));
  }
  await ensureDatabase(config.databaseUrl);
  const dataSource = await createDataSource(config.databaseUrl, 2).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  const app = await createApp(config, { modules });
  shutdown.attach(app);
  const listen = listenAddress(config);
  if (listen.notice) process.stdout.write(`${listen.notice}\n`);
  await app.listen({ port: config.port, host: listen.host });

  const { port } = app.getHttpServer().address() as { port: number };
  const host = ['0.0.0.0', '::', ''].includes(listen.host) ? 'localhost' : listen.host;
  const queues = queueBackend === 'postgres' ? 'PostgreSQL' : 'Redis';
  // What to do next: make a token, and (where this process serves the API) sign in with it at the console.
  const next = config.runsApi
    ? `Next: npm run token -- --sub alice, and sign in with it at http://${host}:${port}/console`
    : 'Next: npm run token -- --sub alice';
  process.stdout.write(
    `ready on http://${host}:${port}: ${describeServices(services)}; queues on ${queues}; ${providers}. ${next}\n`,
  );
}

/**
 * Between two full collections V8 lets a busy process's old space grow by up to 4 times what survived the last one: a
 * worker draining a backlog at concurrency 200 keeps about 55 MiB alive (measured after forced collections) yet grew to
 * 250 MiB RSS. Growing by half at most holds that peak near 190 MiB for about a tenth more CPU per task (the memory
 * benchmark, bench/memory.ts). V8 reads the factor at each collection, so setting it here, at boot, takes effect; the
 * heap's limit stays V8's own, so a process that needs more memory still gets it.
 */
function limitHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=50');
}

/** Boots, or says why not and exits 1. */
export function run(options: BootOptions = {}): void {
  bootstrap(options).catch((err: Error) => {
    // Configuration and missing services are the user's to fix: their messages say how, and a stack would bury it.
    if (err instanceof ConfigError || err instanceof ServicesMissingError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`boot failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}

if (require.main === module) run();
