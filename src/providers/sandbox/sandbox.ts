import type { FastifyInstance } from 'fastify';
import { createOpenAiEmulator } from './openai.emulator';
import { createRunpodEmulator } from './runpod.emulator';
import { createRunwayEmulator } from './runway.emulator';
import { createStabilityEmulator } from './stability.emulator';
import { DEFAULT_KNOBS, EmulatorKnobs, EmulatorStats, SANDBOX_API_KEY } from './emulator-knobs';

export type SandboxVendor = 'openai' | 'stability' | 'runway' | 'runpod';
const VENDORS: SandboxVendor[] = ['openai', 'stability', 'runway', 'runpod'];
export const SANDBOX_RUNPOD_ENDPOINT = 'sandbox';

export interface Sandbox {
  /** Variables that point every adapter at the emulators, with the sandbox key. */
  env: Record<string, string>;
  /** Live knobs, shared by every emulator; change them in place. */
  knobs: EmulatorKnobs;
  stats: Record<SandboxVendor, EmulatorStats>;
  /** False when another process of the deployment already serves the emulators on these ports. */
  hosted: boolean;
  close(): Promise<void>;
}

export interface SandboxOptions {
  host?: string;
  /** First of four consecutive ports (openai, stability, runway, runpod); 0 picks free ports. */
  basePort?: number;
  knobs?: Partial<EmulatorKnobs>;
  runpodWorkers?: number;
}

/**
 * PROVIDERS_MODE=sandbox (DESIGN decision 11): the providers' own HTTP APIs, emulated on loopback, so the whole
 * platform runs end to end with no keys and no network. On fixed ports, the first process of a deployment to start
 * hosts them and the others use those, so every worker sees the same async jobs.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? '127.0.0.1';
  const knobs: EmulatorKnobs = { ...DEFAULT_KNOBS, ...options.knobs };
  const stats = Object.fromEntries(VENDORS.map((v) => [v, new EmulatorStats()])) as Record<
    SandboxVendor,
    EmulatorStats
  >;
  const apps: Record<SandboxVendor, FastifyInstance> = {
    openai: createOpenAiEmulator({ knobs, stats: stats.openai }),
    stability: createStabilityEmulator({ knobs, stats: stats.stability }),
    runway: createRunwayEmulator({ knobs, stats: stats.runway }),
    runpod: createRunpodEmulator({
      knobs,
      stats: stats.runpod,
      endpointId: SANDBOX_RUNPOD_ENDPOINT,
      workers: options.runpodWorkers,
    }),
  };
  const ports = {} as Record<SandboxVendor, number>;
  let hosted = true;
  for (const [i, vendor] of VENDORS.entries()) {
    const wanted = options.basePort ? options.basePort + i : 0;
    try {
      await apps[vendor].listen({ port: wanted, host });
      ports[vendor] = (apps[vendor].server.address() as { port: number }).port;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || !wanted) throw err;
      hosted = false;
      ports[vendor] = wanted;
    }
  }
  const base = (vendor: SandboxVendor) => `http://${host}:${ports[vendor]}`;
  return {
    env: {
      OPENAI_API_KEY: SANDBOX_API_KEY,
      OPENAI_BASE_URL: `${base('openai')}/v1`,
      STABILITY_API_KEY: SANDBOX_API_KEY,
      STABILITY_BASE_URL: base('stability'),
      RUNWAY_API_KEY: SANDBOX_API_KEY,
      RUNWAY_BASE_URL: base('runway'),
      RUNPOD_API_KEY: SANDBOX_API_KEY,
      RUNPOD_ENDPOINT_ID: SANDBOX_RUNPOD_ENDPOINT,
      RUNPOD_BASE_URL: base('runpod'),
    },
    knobs,
    stats,
    hosted,
    close: async () => {
      await Promise.all(Object.values(apps).map((app) => app.close()));
    },
  };
}

/** Knobs from SANDBOX_* variables. */
export function knobsFromEnv(env: Record<string, string | undefined>): Partial<EmulatorKnobs> {
  const num = (name: string) => (env[name] !== undefined && env[name] !== '' ? Number(env[name]) : undefined);
  const knobs: Partial<EmulatorKnobs> = {
    latencyMs: num('SANDBOX_LATENCY_MS'),
    failureRate: num('SANDBOX_FAILURE_RATE'),
    rateLimitRate: num('SANDBOX_RATE_LIMIT_RATE'),
    stuckRate: num('SANDBOX_STUCK_RATE'),
    asyncSteps: num('SANDBOX_ASYNC_STEPS'),
  };
  return Object.fromEntries(Object.entries(knobs).filter(([, v]) => v !== undefined && Number.isFinite(v)));
}
