import { TaskType } from '../../src/tasks/task.enums';
import {
  MediaProvider,
  PollOutcome,
  ProviderArtifact,
  ProviderContext,
  ProviderError,
  ProviderJobRef,
  StartOutcome,
} from '../../src/providers/provider.port';

type Step = 'ok' | 'transient' | 'permanent' | 'hang' | { delayMs: number; progress?: number[] };

/**
 * A provider adapter for platform tests (retries, timeouts, cancel, shutdown, routing) whose behaviour each call
 * follows a script. It sits behind the real port, so the processor, BullMQ and Postgres all run for real; the
 * vendors' protocols are tested against their emulators.
 */
export class ScriptedProvider extends MediaProvider {
  readonly calls: { taskId: string; at: number }[] = [];
  /** Calls stopped by their signal (cancel, timeout, shutdown, a lost lock), with the signal's reason. */
  readonly aborts: { taskId: string; at: number; reason: unknown }[] = [];
  active = 0;
  maxActive = 0;
  override readonly qualityScore: number;
  private script: Step[];

  constructor(
    readonly name: string,
    readonly taskTypes: readonly TaskType[],
    script: Step[] = ['ok'],
    readonly options: { quality?: number; cost?: number; cap?: number; artifacts?: ProviderArtifact[] } = {},
  ) {
    super();
    this.script = [...script];
    this.qualityScore = options.quality ?? 0.5;
  }

  override maxConcurrency(): number | undefined {
    return this.options.cap;
  }

  setScript(script: Step[]): void {
    this.script = [...script];
  }

  isConfigured(): boolean {
    return true;
  }

  override estimateCost() {
    return { amount: this.options.cost ?? 0.01, currency: 'USD' as const };
  }

  async start(ctx: ProviderContext): Promise<StartOutcome> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      return await this.run(ctx);
    } finally {
      this.active--;
    }
  }

  private async run({ taskId, signal, reportProgress }: ProviderContext): Promise<StartOutcome> {
    this.calls.push({ taskId, at: Date.now() });
    signal.addEventListener('abort', () => this.aborts.push({ taskId, at: Date.now(), reason: signal.reason }), {
      once: true,
    });
    const step = this.script.length > 1 ? this.script.shift()! : (this.script[0] ?? 'ok');
    if (step === 'transient') throw ProviderError.transient('provider_unavailable', 'upstream answered 503');
    if (step === 'permanent') throw ProviderError.permanent('content_policy', 'the prompt was refused');
    if (step === 'hang') {
      await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    }
    if (typeof step === 'object') {
      for (const p of step.progress ?? []) reportProgress(p);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, step.delayMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('aborted'));
        });
      });
    }
    return {
      kind: 'completed',
      output: {
        artifacts: [...(this.options.artifacts ?? [])],
        data: { provider: this.name, call: this.calls.length },
      },
      cost: this.estimateCost(),
    };
  }

  override poll(_ctx: ProviderContext, _job: ProviderJobRef): Promise<PollOutcome> {
    return Promise.reject(new Error('not async'));
  }
}
