import { constants } from 'node:os';
import type { ProvidedServices } from './embedded-services';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

type Listener = (...args: unknown[]) => void;

/**
 * Ties the servers started at boot to this process: they stop after the application on SIGINT, SIGTERM and SIGHUP,
 * and are told to stop (without waiting, as nothing can be awaited then) on any exit.
 *
 * The application (Nest's shutdown hooks) listens to the same signals, closes, removes its listeners and raises the
 * signal again; while one of its listeners is still registered, the application is closing and the servers must stay.
 */
export class ServiceLifetime {
  private appListeners = new Map<NodeJS.Signals, Listener[]>();

  constructor(private readonly services: ProvidedServices) {
    process.once('exit', () => services.stopNow());
    for (const name of SIGNALS) process.on(name, this.onSignal);
  }

  /** Runs `create` (which builds the application), noting the signal listeners it registers. */
  async around<T>(create: () => Promise<T>): Promise<T> {
    const before = new Map(SIGNALS.map((name) => [name, new Set(process.listeners(name))]));
    try {
      return await create();
    } finally {
      for (const name of SIGNALS) {
        this.appListeners.set(
          name,
          (process.listeners(name) as Listener[]).filter((l) => !before.get(name)!.has(l)),
        );
      }
    }
  }

  private readonly onSignal = (name: NodeJS.Signals): void => {
    const registered = process.listeners(name) as Listener[];
    if ((this.appListeners.get(name) ?? []).some((l) => registered.includes(l))) return;
    void this.services.stop().finally(() => process.exit(128 + (constants.signals[name] ?? 0)));
  };
}
