import { Inject, Injectable } from '@nestjs/common';
import { TaskOptions } from '../tasks/entities/task.entity';
import { TaskErrorCode, TaskType } from '../tasks/task.enums';
import { MEDIA_PROVIDERS, MediaProvider, ProviderError } from './provider.port';

/**
 * Knows every adapter and picks the ones that may run a task, in the order to try them. Routing strategies and live
 * health plug in here.
 */
@Injectable()
export class ProviderRegistry {
  private readonly byName: Map<string, MediaProvider>;

  constructor(@Inject(MEDIA_PROVIDERS) private readonly providers: MediaProvider[]) {
    this.byName = new Map(providers.map((p) => [p.name, p]));
    if (this.byName.size !== providers.length) throw new Error('two providers share a name');
  }

  list(): MediaProvider[] {
    return [...this.providers];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): MediaProvider | undefined {
    return this.byName.get(name);
  }

  /** Configured providers able to run `type`, best first; a pinned provider narrows the list to itself. */
  candidates(type: TaskType, options: TaskOptions = {}): MediaProvider[] {
    const pool = options.provider ? [this.byName.get(options.provider)].filter((p) => p !== undefined) : this.providers;
    return pool.filter((p) => p.supports(type) && p.isConfigured());
  }

  /** The candidates, or a permanent `no_provider` failure explaining why there are none. */
  route(type: TaskType, options: TaskOptions = {}): MediaProvider[] {
    const candidates = this.candidates(type, options);
    if (candidates.length > 0) return candidates;
    const reason = options.provider
      ? `provider "${options.provider}" cannot run ${type} tasks or is not configured`
      : `no configured provider can run ${type} tasks`;
    throw ProviderError.permanent(TaskErrorCode.NoProvider, reason);
  }
}
