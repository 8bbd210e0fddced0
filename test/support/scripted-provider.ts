import { TaskType } from '../../src/tasks/task.enums';
import { MediaProvider, ProviderError, ProviderResult, ProviderRunRequest } from '../../src/providers/provider.port';

type Step = 'ok' | 'transient' | 'permanent' | 'hang' | { delayMs: number; progress?: number[] };

/**
 * A provider adapter for platform tests (retries, timeouts, cancel, shutdown) whose behaviour each call follows a
 * script. It sits behind the real port, so the processor, BullMQ and Postgres all run for real; the provider
 * protocols themselves are tested against their emulators.
 */
export class ScriptedProvider extends MediaProvider {
  readonly calls: { taskId: string; at: number }[] = [];
  private script: Step[];

  constructor(
    readonly name: string,
    readonly taskTypes: readonly TaskType[],
    script: Step[] = ['ok'],
  ) {
    super();
    this.script = [...script];
  }

  setScript(script: Step[]): void {
    this.script = [...script];
  }

  isConfigured(): boolean {
    return true;
  }

  async run({ taskId, signal, reportProgress }: ProviderRunRequest): Promise<ProviderResult> {
    this.calls.push({ taskId, at: Date.now() });
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
    return { output: { provider: this.name, call: this.calls.length }, cost: { amount: 0.01, currency: 'USD' } };
  }
}
