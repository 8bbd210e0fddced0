import { AppConfig } from '../config/app-config';
import { TaskType } from '../tasks/task.enums';
import { isEmulated, markedAsSandbox } from './emulated-provider';
import { ProviderHealthService } from './provider-health.service';
import {
  MediaProvider,
  PollOutcome,
  ProviderContext,
  ProviderJobRef,
  ProviderOutput,
  StartOutcome,
} from './provider.port';
import { ProviderRegistry } from './provider.registry';

const EMULATORS = ['http://127.0.0.1:4010', 'http://127.0.0.1:4011'];

/** A vendor adapter as the registry sees it: its base URL, and outputs that say nothing of where they came from. */
class HttpProvider extends MediaProvider {
  readonly taskTypes = [TaskType.ImageGeneration];
  override readonly qualityScore = 0.9;
  readonly released: string[] = [];
  readonly cancelled: string[] = [];
  pollAnswer: PollOutcome = { kind: 'running', progress: 0.5, pollAfterMs: 100, queuePosition: 2 };

  constructor(
    readonly name: string,
    private readonly url: string | undefined,
    private readonly startAnswer: 'completed' | 'submitted' = 'completed',
  ) {
    super();
  }

  isConfigured(): boolean {
    return true;
  }

  override baseUrl(): string | undefined {
    return this.url;
  }

  override maxConcurrency(): number {
    return 3;
  }

  start(ctx: ProviderContext): Promise<StartOutcome> {
    if (this.startAnswer === 'submitted') {
      return Promise.resolve({ kind: 'submitted', job: { id: `job-${ctx.taskId}` }, pollAfterMs: 100 });
    }
    return Promise.resolve({
      kind: 'completed',
      output: this.output(ctx.taskId),
      cost: { amount: 1, currency: 'USD' },
    });
  }

  override poll(_ctx: ProviderContext, _job: ProviderJobRef): Promise<PollOutcome> {
    return Promise.resolve(this.pollAnswer);
  }

  override cancel(job: ProviderJobRef): Promise<void> {
    this.cancelled.push(job.id);
    return Promise.resolve();
  }

  output(taskId: string): ProviderOutput {
    return {
      artifacts: [{ contentType: 'image/png', data: Buffer.from('png') }],
      data: { seed: 7 },
      release: () => {
        this.released.push(taskId);
        return Promise.resolve();
      },
    };
  }
}

function context(taskId = 't1'): ProviderContext {
  return {
    taskId,
    type: TaskType.ImageGeneration,
    input: { prompt: 'a fox' },
    signal: new AbortController().signal,
    reportProgress: () => undefined,
  };
}

function registry(providers: MediaProvider[], emulatorOrigins?: string[]): ProviderRegistry {
  // Only the provider list matters here: no routing, so no health or configuration is read.
  return new ProviderRegistry(providers, {} as ProviderHealthService, {} as AppConfig, emulatorOrigins);
}

function completedOutput(outcome: StartOutcome | PollOutcome): ProviderOutput {
  if (outcome.kind !== 'completed') throw new Error(`expected completed, got ${outcome.kind}`);
  return outcome.output;
}

describe('isEmulated', () => {
  it('is true when the base URL is on an emulator origin, whatever its path', () => {
    expect(isEmulated(new HttpProvider('openai', 'http://127.0.0.1:4010/v1'), EMULATORS)).toBe(true);
    expect(isEmulated(new HttpProvider('stability', 'http://127.0.0.1:4011'), EMULATORS)).toBe(true);
  });

  it('is false for another port, another host, an in-process provider, or when no emulators run', () => {
    expect(isEmulated(new HttpProvider('a', 'http://127.0.0.1:4012'), EMULATORS)).toBe(false);
    expect(isEmulated(new HttpProvider('b', 'https://api.openai.com/v1'), EMULATORS)).toBe(false);
    expect(isEmulated(new HttpProvider('c', undefined), EMULATORS)).toBe(false);
    expect(isEmulated(new HttpProvider('d', 'http://127.0.0.1:4010/v1'), [])).toBe(false);
  });
});

describe('markedAsSandbox', () => {
  it('adds sandbox: true to a completed start, keeping the rest of the output and the cost', async () => {
    const provider = new HttpProvider('openai', 'http://127.0.0.1:4010/v1');
    const outcome = await markedAsSandbox(provider).start(context('t1'));

    expect(outcome).toMatchObject({ kind: 'completed', cost: { amount: 1, currency: 'USD' } });
    const output = completedOutput(outcome);
    expect(output).toMatchObject({ data: { seed: 7 }, sandbox: true });
    expect(output.artifacts[0].data).toEqual(Buffer.from('png'));
    await output.release!();
    expect(provider.released).toEqual(['t1']);
  });

  it('adds sandbox: true to a completed poll, and leaves submitted and running outcomes as they are', async () => {
    const provider = new HttpProvider('runway', 'http://127.0.0.1:4011', 'submitted');
    const marked = markedAsSandbox(provider);

    expect(await marked.start(context())).toEqual({ kind: 'submitted', job: { id: 'job-t1' }, pollAfterMs: 100 });
    expect(await marked.poll(context(), { id: 'job-t1' })).toEqual(provider.pollAnswer);
    provider.pollAnswer = { kind: 'completed', output: provider.output('t1') };
    expect(completedOutput(await marked.poll(context(), { id: 'job-t1' })).sandbox).toBe(true);
  });

  it('is the same provider in every other respect', async () => {
    const provider = new HttpProvider('openai', 'http://127.0.0.1:4010/v1');
    const marked = markedAsSandbox(provider);

    expect(marked).toBeInstanceOf(HttpProvider);
    expect(marked.name).toBe('openai');
    expect(marked.taskTypes).toEqual([TaskType.ImageGeneration]);
    expect(marked.baseUrl()).toBe('http://127.0.0.1:4010/v1');
    expect(marked.supports(TaskType.ImageGeneration)).toBe(true);
    expect(marked.qualityScore).toBe(0.9);
    expect(marked.maxConcurrency()).toBe(3);
    await marked.cancel({ id: 'job-9' });
    expect(provider.cancelled).toEqual(['job-9']);
    // The provider itself is untouched: what it makes says nothing of the sandbox.
    expect(completedOutput(await provider.start(context()))).not.toHaveProperty('sandbox');
  });
});

describe('ProviderRegistry and the emulators', () => {
  const emulated = new HttpProvider('openai', 'http://127.0.0.1:4010/v1');
  const real = new HttpProvider('stability', 'https://api.stability.ai');
  const local = new HttpProvider('subtitle-engine', undefined);

  it('hands out the providers that talk to an emulator marked, and the others as they are', async () => {
    const providers = registry([emulated, real, local], EMULATORS);

    expect(completedOutput(await providers.get('openai')!.start(context())).sandbox).toBe(true);
    expect(providers.get('stability')).toBe(real);
    expect(providers.get('subtitle-engine')).toBe(local);
    expect(completedOutput(await providers.get('stability')!.start(context()))).not.toHaveProperty('sandbox');
    // The list (GET /providers, routing) holds the same objects as get().
    const [first, ...others] = providers.list();
    expect(first).toBe(providers.get('openai'));
    expect(others).toEqual([real, local]);
  });

  it('marks nothing in a live deployment (no emulator origins given)', async () => {
    const providers = registry([emulated, real, local]);

    expect(providers.get('openai')).toBe(emulated);
    expect(completedOutput(await providers.get('openai')!.start(context()))).not.toHaveProperty('sandbox');
  });
});
