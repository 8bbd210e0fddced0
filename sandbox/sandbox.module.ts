import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from '../src/config/app-config';
import { EMULATOR_ORIGINS } from '../src/providers/emulated-provider';
import { knobsFromEnv, runpodExecutionFromEnv, Sandbox, startSandbox } from './sandbox';
import { SANDBOX, SandboxController } from './sandbox.controller';
import { SandboxSamplesController } from './sandbox-samples.controller';

/**
 * The sandbox inside the application (PROVIDERS_MODE=sandbox): the emulators' origins, by which the provider registry
 * marks what emulated providers make, and, where the process serves the API, the admin routes of the knobs and the
 * sample media routes. src/main.ts loads this file with its one dynamic import of the sandbox, in sandbox mode only;
 * nothing in src/ imports it.
 */
@Module({})
export class SandboxModule {
  static forRoot(sandbox: Sandbox, config: AppConfig): DynamicModule {
    return {
      module: SandboxModule,
      // The registry, in ProvidersModule, asks for EMULATOR_ORIGINS without importing this module.
      global: true,
      controllers: config.runsApi ? [SandboxController, SandboxSamplesController] : [],
      providers: [
        { provide: SANDBOX, useValue: sandbox },
        { provide: EMULATOR_ORIGINS, useValue: sandbox.emulatorOrigins },
      ],
      exports: [EMULATOR_ORIGINS],
    };
  }
}

/**
 * `npm start` in sandbox mode: starts the emulators on SANDBOX_PORT and the ports after it (or uses those another
 * process of the deployment already serves), with the knobs of the SANDBOX_* variables. Its `env` points the adapters
 * at them. A port another program holds is a boot failure naming it when SANDBOX_PORT was set; left at its default,
 * that emulator takes a free port instead, so a fresh `npm start` comes up whatever else the machine runs.
 */
export async function startSandboxForApp(config: AppConfig, env: Record<string, string | undefined>): Promise<Sandbox> {
  const sandbox = await startSandbox({
    basePort: config.sandboxPort,
    knobs: knobsFromEnv(env),
    runpodExecution: runpodExecutionFromEnv(env),
    ffmpeg: config.ffmpeg,
    allowPrivateAddresses: config.allowPrivateAddresses,
    fallBackToFreePorts: !env.SANDBOX_PORT,
  });
  const moved = sandbox.relocated.map((vendor) => `${vendor} on ${sandbox.ports[vendor]}`);
  process.stdout.write(
    `sandbox: provider emulators ${sandbox.hosted ? 'started' : 'shared with another process'} on ports from ${config.sandboxPort}` +
      (moved.length ? ` (${moved.join(', ')}: another program holds their ports)` : '') +
      (sandbox.hosted ? `, RunPod jobs ${sandbox.runpodExecution}\n` : '\n'),
  );
  return sandbox;
}
