import type { ProvidedServices } from '../../src/embedded-services/embedded-services';
import { TEST_SERVICES } from './global-setup';

/** Stops the servers the global setup started, if it started any. */
export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as Record<symbol, unknown>)[TEST_SERVICES] as ProvidedServices | undefined;
  await services?.stop();
}
