import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../src/config/env.schema';
import { toolAvailable } from '../src/providers/adapters/ffmpeg/ffmpeg-process';
import { createAssemblyAiEmulator } from './emulators/assemblyai.emulator';
import { createFalEmulator } from './emulators/fal.emulator';
import { createGeminiEmulator } from './emulators/gemini.emulator';
import { createOpenAiEmulator } from './emulators/openai.emulator';
import { createRunpodEmulator, ffmpegRunpodWorker, RunpodExecution } from './emulators/runpod.emulator';
import { createRunwayEmulator } from './emulators/runway.emulator';
import { createStabilityEmulator } from './emulators/stability.emulator';
import { DEFAULT_KNOBS, EmulatorKnobs, EmulatorStats, SANDBOX_API_KEY } from './emulators/emulator-knobs';

export type SandboxVendor = 'openai' | 'stability' | 'runway' | 'runpod' | 'assemblyai' | 'fal' | 'gemini';
/** In port order: a vendor's port is the base port plus its place here, so new vendors go at the end. */
const VENDORS: SandboxVendor[] = ['openai', 'stability', 'runway', 'runpod', 'assemblyai', 'fal', 'gemini'];
export const SANDBOX_RUNPOD_ENDPOINT = 'sandbox';

export interface Sandbox {
  /** Variables that point every adapter at the emulators, with the sandbox key. */
  env: Record<string, string>;
  /** Where the emulators listen (`http://127.0.0.1:4010`, …): a provider whose base URL is on one is emulated. */
  emulatorOrigins: string[];
  /** Live knobs, shared by every emulator; change them in place. */
  knobs: EmulatorKnobs;
  stats: Record<SandboxVendor, EmulatorStats>;
  /** How this process's RunPod emulator runs jobs (see RunpodExecution). */
  runpodExecution: RunpodExecution;
  /** False when another process of the deployment already serves the emulators on these ports. */
  hosted: boolean;
  /** Where each emulator is (its own or another process's). */
  ports: Record<SandboxVendor, number>;
  /** Emulators that listen on a free port because another program held theirs (`fallBackToFreePorts`). */
  relocated: SandboxVendor[];
  close(): Promise<void>;
}

export interface SandboxOptions {
  host?: string;
  /** First of consecutive ports, one per vendor in the order of VENDORS; 0 picks free ports. */
  basePort?: number;
  knobs?: Partial<EmulatorKnobs>;
  runpodWorkers?: number;
  /** Default `ffmpeg` when the ffmpeg and ffprobe binaries run, else `simulated`. */
  runpodExecution?: RunpodExecution;
  /** The binaries `ffmpeg` execution runs; default `ffmpeg` and `ffprobe` on the PATH. */
  ffmpeg?: { ffmpegPath: string; ffprobePath: string };
  /** Whether `ffmpeg` execution may download inputs from private addresses (loopback media servers); default no. */
  allowPrivateAddresses?: boolean;
  /**
   * When a port is held by a program that is not an emulator: listen on a free port instead (true), or fail naming
   * the port (the default). Ports held by emulators of another process are shared either way.
   */
  fallBackToFreePorts?: boolean;
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
  const tools = options.ffmpeg ?? { ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe' };
  const runpodExecution =
    options.runpodExecution ??
    (toolAvailable(tools.ffmpegPath) && toolAvailable(tools.ffprobePath) ? 'ffmpeg' : 'simulated');
  const apps: Record<SandboxVendor, FastifyInstance> = {
    openai: createOpenAiEmulator({ knobs, stats: stats.openai }),
    stability: createStabilityEmulator({ knobs, stats: stats.stability }),
    runway: createRunwayEmulator({ knobs, stats: stats.runway }),
    runpod: createRunpodEmulator({
      knobs,
      stats: stats.runpod,
      endpointId: SANDBOX_RUNPOD_ENDPOINT,
      workers: options.runpodWorkers,
      execution: runpodExecution,
      worker:
        runpodExecution === 'ffmpeg'
          ? ffmpegRunpodWorker({ ...tools, allowPrivateAddresses: options.allowPrivateAddresses ?? false })
          : undefined,
    }),
    assemblyai: createAssemblyAiEmulator({ knobs, stats: stats.assemblyai }),
    fal: createFalEmulator({ knobs, stats: stats.fal }),
    gemini: createGeminiEmulator({ knobs, stats: stats.gemini }),
  };
  const ports = {} as Record<SandboxVendor, number>;
  const relocated: SandboxVendor[] = [];
  let hosted = true;
  const listen = async (vendor: SandboxVendor, port: number) => {
    await apps[vendor].listen({ port, host });
    return (apps[vendor].server.address() as { port: number }).port;
  };
  for (const [i, vendor] of VENDORS.entries()) {
    const wanted = options.basePort ? options.basePort + i : 0;
    try {
      ports[vendor] = await listen(vendor, wanted);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || !wanted) throw err;
      if (await emulatorAnswers(host, wanted)) {
        hosted = false;
        ports[vendor] = wanted;
      } else if (options.fallBackToFreePorts) {
        ports[vendor] = await listen(vendor, 0);
        relocated.push(vendor);
      } else {
        await Promise.all(Object.values(apps).map((app) => app.close()));
        throw new ConfigError([
          `SANDBOX_PORT: port ${wanted} (the ${vendor} emulator's, SANDBOX_PORT + ${i}) is taken by a program that is ` +
            `not a provider emulator; stop it, or set SANDBOX_PORT to the first of ${VENDORS.length} free ports (0: any free ports)`,
        ]);
      }
    }
  }
  const base = (vendor: SandboxVendor) => `http://${host}:${ports[vendor]}`;
  return {
    emulatorOrigins: VENDORS.map(base),
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
      ASSEMBLYAI_API_KEY: SANDBOX_API_KEY,
      ASSEMBLYAI_BASE_URL: base('assemblyai'),
      FAL_KEY: SANDBOX_API_KEY,
      FAL_BASE_URL: base('fal'),
      GEMINI_API_KEY: SANDBOX_API_KEY,
      GEMINI_BASE_URL: base('gemini'),
    },
    knobs,
    stats,
    runpodExecution,
    hosted,
    ports,
    relocated,
    close: async () => {
      await Promise.all(Object.values(apps).map((app) => app.close()));
    },
  };
}

/**
 * Whether what holds `port` is a provider emulator: every emulator answers every request with `x-sandbox: true`. The
 * wait covers a latency knob of a few seconds in the process that hosts them.
 */
async function emulatorAnswers(host: string, port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.headers.get('x-sandbox') === 'true';
  } catch {
    return false;
  }
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
    clipMs: num('SANDBOX_CLIP_MS'),
  };
  return Object.fromEntries(Object.entries(knobs).filter(([, v]) => v !== undefined && Number.isFinite(v)));
}

/** SANDBOX_RUNPOD_EXECUTION (`ffmpeg` or `simulated`); unset or empty leaves the choice to startSandbox. */
export function runpodExecutionFromEnv(env: Record<string, string | undefined>): RunpodExecution | undefined {
  const value = env.SANDBOX_RUNPOD_EXECUTION;
  if (value === undefined || value === '') return undefined;
  if (value === 'ffmpeg' || value === 'simulated') return value;
  throw new Error(`SANDBOX_RUNPOD_EXECUTION must be ffmpeg or simulated, not ${value}`);
}
