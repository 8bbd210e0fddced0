import { Inject, Injectable, Optional } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { FieldProblem } from '../common/domain-exception';
import { TaskOptions } from '../tasks/entities/task.entity';
import { TaskRequest } from '../tasks/task-input';
import { ImageOperation, RoutingStrategy, TaskErrorCode, TaskType } from '../tasks/task.enums';
import { EMULATOR_ORIGINS, isEmulated, markedAsSandbox } from './emulated-provider';
import { ProviderHealth, ProviderHealthService } from './provider-health.service';
import { withLinkedUploads } from './linked-media';
import { MEDIA_PROVIDERS, MediaProvider, ProviderError, ProviderJobRef } from './provider.port';
import { StoredMedia } from './stored-media';

/** A cluster-wide cap on tasks of a kind, whatever their provider: `cap` slots under the key `key`. */
export interface TaskCap {
  key: string;
  cap: number;
}

/** Latency assumed for a provider never measured, so new providers are tried but not preferred for speed. */
const UNKNOWN_LATENCY_MS = 5000;

/**
 * Knows every adapter and orders the ones that may run a task (DESIGN decision 6: routing is data): configured,
 * able to run the type, accepting the input; then sorted by the task's strategy on the live health in Redis.
 * A provider whose base URL is a sandbox emulator's is handed out marked, so its outputs say `sandbox: true`; one
 * that passes media URLs on to its vendor gets uploads as signed links (linked-media.ts).
 */
@Injectable()
export class ProviderRegistry {
  private readonly providers: MediaProvider[];
  private readonly byName: Map<string, MediaProvider>;
  private roundRobin = 0;

  constructor(
    @Inject(MEDIA_PROVIDERS) providers: MediaProvider[],
    private readonly health: ProviderHealthService,
    private readonly config: AppConfig,
    @Optional() @Inject(EMULATOR_ORIGINS) emulatorOrigins: readonly string[] = [],
    @Optional() media?: StoredMedia,
  ) {
    this.providers = providers
      .map((p) => (isEmulated(p, emulatorOrigins) ? markedAsSandbox(p) : p))
      .map((p) => (media && p.mediaInputs === 'linked' ? withLinkedUploads(p, media) : p));
    this.byName = new Map(this.providers.map((p) => [p.name, p]));
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

  /** Cluster-wide cap of concurrent jobs at a provider, when it has one. */
  capOf(name: string): number | undefined {
    const own = this.byName.get(name)?.maxConcurrency();
    if (own !== undefined) return own;
    return name === 'runpod' ? this.config.runpod.maxConcurrency : undefined;
  }

  /**
   * The cluster-wide caps a task is under besides its provider's, whatever provider runs it: each a key of the
   * shared caps (ProviderHealthService: leased slots and a fair line, as a provider's) and its number of slots.
   * Today the image operations' (`image_edit:<operation>`, IMAGE_EDIT_CONCURRENCY).
   */
  taskCapsOf(task: { type: TaskType; input: Record<string, unknown> }): TaskCap[] {
    if (task.type === TaskType.ImageEdit) {
      const operation = task.input.operation as ImageOperation;
      const cap = this.config.imageEditConcurrency[operation];
      return cap === undefined ? [] : [{ key: `${TaskType.ImageEdit}:${operation}`, cap }];
    }
    return [];
  }

  /**
   * The keys of every line a task may stand in (ProviderHealthService): its task caps', its provider's, and every
   * capped provider's that runs its type, since a task no provider admitted yet may wait at any of them (a split
   * task's parts join the line of the provider they were sized for before they ask).
   */
  linesOf(task: { type: TaskType; input: Record<string, unknown>; provider: string | null }): string[] {
    const capped = this.providers.filter((p) => p.supports(task.type) && this.capOf(p.name) !== undefined);
    return [
      ...new Set([
        ...this.taskCapsOf(task).map(({ key }) => key),
        ...(task.provider ? [task.provider] : []),
        ...capped.map((p) => p.name),
      ]),
    ];
  }

  /**
   * A task stops before its provider finished (cancel, timeout): stop its job at the provider, which would go on
   * costing, and free its slots or its places in every line (linesOf), so the tasks behind it do not wait for its
   * place to lapse. Best effort: the task's own status is already final. Answers the tasks now first in the lines it
   * left, whose delayed jobs may run at once.
   */
  async abandon(task: {
    id: string;
    type: TaskType;
    input: Record<string, unknown>;
    provider: string | null;
    providerJob: Record<string, unknown> | null;
  }): Promise<string[]> {
    const provider = task.provider ? this.byName.get(task.provider) : undefined;
    if (provider && task.providerJob) {
      await provider.cancel(task.providerJob as ProviderJobRef).catch(() => undefined);
    }
    return this.leaveLines(task);
  }

  /**
   * Frees the task's slots and its places in every line it may stand in (linesOf). Best effort. Answers the tasks now
   * first in those lines, whose delayed jobs may run at once.
   */
  async leaveLines(task: { id: string; type: TaskType; input: Record<string, unknown>; provider: string | null }) {
    const next = new Set<string>();
    for (const key of this.linesOf(task)) {
      const first = await this.health.release(key, task.id).catch(() => undefined);
      if (first && first !== task.id) next.add(first);
    }
    return [...next];
  }

  healthOf(name: string): Promise<ProviderHealth> {
    return this.health.snapshot(name);
  }

  /**
   * Submit-time check: problems the input has for the provider(s) that would run it, as 400 field problems (none
   * when one of them accepts it; the same problem from two providers once). Nothing configured for the type is not a
   * submit error: such tasks fail fast with `no_provider`.
   */
  submitProblems(task: TaskRequest, options: TaskOptions): FieldProblem[] {
    const pool = this.configuredFor(task.type, options);
    if (pool.length === 0) return [];
    const problems = pool.map((p) => p.validate(task));
    if (problems.some((list) => list.length === 0)) return [];
    const unique = new Map(problems.flat().map((p) => [`${p.field}\n${p.message}`, p]));
    return [...unique.values()];
  }

  /** The providers to try for a task, best first; a permanent `no_provider` failure when there are none. */
  async route(task: TaskRequest, options: TaskOptions = {}): Promise<MediaProvider[]> {
    const { type } = task;
    const configured = this.configuredFor(type, options);
    const able = configured.filter((p) => p.validate(task).length === 0);
    if (able.length === 0) {
      const reason = options.provider
        ? `provider "${options.provider}" cannot run this ${type} task or is not configured`
        : configured.length
          ? `no configured provider accepts this ${type} input`
          : `no configured provider can run ${type} tasks`;
      throw ProviderError.permanent(TaskErrorCode.NoProvider, reason);
    }
    const strategy = options.strategy ?? (this.config.providerStrategy as RoutingStrategy);
    const ordered = await this.order(able, strategy, task);
    // A task that asks for no strategy goes first to the providers that are the default for it (image-local for
    // the image operations it runs: free, and on the worker), the others staying in order as fallbacks.
    if (options.strategy) return ordered;
    return [...ordered.filter((p) => p.isDefaultFor(task)), ...ordered.filter((p) => !p.isDefaultFor(task))];
  }

  private configuredFor(type: TaskType, options: TaskOptions): MediaProvider[] {
    const pool = options.provider ? [this.byName.get(options.provider)].filter((p) => p !== undefined) : this.providers;
    return pool.filter((p) => p.supports(type) && p.isConfigured());
  }

  private async order(
    providers: MediaProvider[],
    strategy: RoutingStrategy,
    task: TaskRequest,
  ): Promise<MediaProvider[]> {
    if (providers.length < 2) return providers;
    const snapshots = await this.health.snapshots(providers.map((p) => p.name));
    const health = new Map(providers.map((p, i) => [p.name, snapshots[i]]));
    const latency = (p: MediaProvider) => health.get(p.name)!.latencyMs ?? UNKNOWN_LATENCY_MS;
    const success = (p: MediaProvider) => health.get(p.name)!.successRate;
    const inFlight = (p: MediaProvider) => health.get(p.name)!.inFlight;
    const cost = (p: MediaProvider) => p.estimateCost(task).amount;
    const by =
      (...keys: ((p: MediaProvider) => number)[]) =>
      (a: MediaProvider, b: MediaProvider) => {
        for (const key of keys) {
          const d = key(a) - key(b);
          if (d !== 0) return d;
        }
        return 0;
      };
    const sorted = [...providers];
    switch (strategy) {
      case RoutingStrategy.Quality:
        return sorted.sort(by((p) => -p.qualityScore, cost));
      case RoutingStrategy.Cost:
        return sorted.sort(by(cost, (p) => -p.qualityScore));
      case RoutingStrategy.Speed:
        return sorted.sort(by(latency, (p) => -success(p)));
      case RoutingStrategy.Reliability:
        return sorted.sort(
          by(
            (p) => -success(p),
            latency,
            (p) => -p.qualityScore,
          ),
        );
      case RoutingStrategy.LoadBalancing: {
        // Fewest in flight first; ties rotate so equal providers share the load.
        const offset = this.roundRobin++ % sorted.length;
        const rotated = [...sorted.slice(offset), ...sorted.slice(0, offset)];
        return rotated.sort(by(inFlight));
      }
    }
  }
}
