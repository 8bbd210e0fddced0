import { MediaProvider, PollOutcome, StartOutcome } from './provider.port';

/**
 * DI token of the origins the provider emulators listen on (`http://127.0.0.1:4010`, …). The sandbox module provides
 * it in PROVIDERS_MODE=sandbox; a live deployment has none.
 */
export const EMULATOR_ORIGINS = Symbol('EMULATOR_ORIGINS');

/** Whether the provider's configured base URL is on one of the emulators' origins. */
export function isEmulated(provider: MediaProvider, emulatorOrigins: readonly string[]): boolean {
  const baseUrl = provider.baseUrl();
  if (!baseUrl || emulatorOrigins.length === 0) return false;
  return URL.canParse(baseUrl) && emulatorOrigins.includes(new URL(baseUrl).origin);
}

/**
 * The provider as the registry hands it out when it talks to an emulator: every output it completes says
 * `sandbox: true` (DESIGN decision 11), so adapters never need to tell an emulator from the real vendor. Only `start`
 * and `poll` are changed; every other member is the provider's own, including members the port gains later.
 */
export function markedAsSandbox(provider: MediaProvider): MediaProvider {
  const start: MediaProvider['start'] = (...args) => provider.start(...args).then(withSandboxFlag);
  const poll: MediaProvider['poll'] = (...args) => provider.poll(...args).then(withSandboxFlag);
  return new Proxy(provider, {
    get: (target, key, receiver) =>
      key === 'start' ? start : key === 'poll' ? poll : (Reflect.get(target, key, receiver) as unknown),
  });
}

function withSandboxFlag<T extends StartOutcome | PollOutcome>(outcome: T): T {
  return outcome.kind === 'completed' ? { ...outcome, output: { ...outcome.output, sandbox: true } } : outcome;
}
