import { FieldProblem } from '../common/domain-exception';
import { AppConfig } from '../config/app-config';
import { TaskRequest } from '../tasks/task-input';
import { RoutingStrategy, TaskErrorCode, TaskType } from '../tasks/task.enums';
import { OpenAiImagesAdapter } from './adapters/openai/openai-images.adapter';
import { StabilityAdapter } from './adapters/stability/stability.adapter';
import { ProviderHealth, ProviderHealthService } from './provider-health.service';
import { Cost, fieldProblem, MediaProvider, ProviderError, StartOutcome } from './provider.port';
import { ProviderRegistry } from './provider.registry';

/** An image provider whose price, quality and problems the test sets; it is never started here. */
class FakeImageProvider extends MediaProvider<TaskType.ImageGeneration> {
  readonly taskTypes = [TaskType.ImageGeneration] as const;
  override readonly qualityScore: number;

  constructor(
    readonly name: string,
    private readonly settings: {
      quality?: number;
      cost?: number;
      configured?: boolean;
      problems?: FieldProblem[];
      isDefault?: boolean;
      cap?: number;
    } = {},
  ) {
    super();
    this.qualityScore = settings.quality ?? 0.5;
  }

  isConfigured(): boolean {
    return this.settings.configured ?? true;
  }

  override estimateCost(): Cost {
    return { amount: this.settings.cost ?? 0, currency: 'USD' };
  }

  override validate(): FieldProblem[] {
    return this.settings.problems ?? [];
  }

  override isDefaultFor(): boolean {
    return this.settings.isDefault ?? false;
  }

  override maxConcurrency(): number | undefined {
    return this.settings.cap;
  }

  start(): Promise<StartOutcome> {
    return Promise.reject(new Error('not started in these tests'));
  }
}

/** Provider health as Redis would hold it, set per provider by the test. */
class FakeHealth implements Pick<ProviderHealthService, 'snapshot' | 'snapshots' | 'release'> {
  readonly health = new Map<string, Partial<ProviderHealth>>();
  readonly released: [string, string][] = [];
  /** Who is first in each line once a task leaves it. */
  readonly firstInLine = new Map<string, string>();

  snapshot(name: string): Promise<ProviderHealth> {
    return Promise.resolve({
      successRate: 1,
      latencyMs: null,
      inFlight: 0,
      circuit: 'closed',
      calls: 0,
      failures: 0,
      ...this.health.get(name),
    });
  }

  snapshots(names: string[]): Promise<ProviderHealth[]> {
    return Promise.all(names.map((name) => this.snapshot(name)));
  }

  release(name: string, taskId: string): Promise<string | undefined> {
    this.released.push([name, taskId]);
    return Promise.resolve(this.firstInLine.get(name));
  }
}

const IMAGE = (input: Partial<TaskRequest<TaskType.ImageGeneration>['input']> = {}) =>
  ({ type: TaskType.ImageGeneration, input: { prompt: 'A lighthouse at dawn', ...input } }) as const;

function registryOf(providers: MediaProvider[], env: Record<string, string> = {}) {
  const health = new FakeHealth();
  const registry = new ProviderRegistry(
    providers,
    health as unknown as ProviderHealthService,
    AppConfig.fromEnv({ PROVIDER_STRATEGY: 'quality', ...env }),
  );
  return { registry, health };
}

const names = (providers: MediaProvider[]) => providers.map((p) => p.name);

async function routeError(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('ProviderRegistry', () => {
  it('refuses two providers of one name', () => {
    expect(() => registryOf([new FakeImageProvider('same'), new FakeImageProvider('same')])).toThrow(
      'two providers share a name',
    );
  });

  describe('route', () => {
    it('orders by quality, the cheaper first among equals (the quality strategy)', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('good-dear', { quality: 0.9, cost: 0.1 }),
        new FakeImageProvider('fair', { quality: 0.5, cost: 0.01 }),
        new FakeImageProvider('good-cheap', { quality: 0.9, cost: 0.02 }),
      ]);
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Quality }))).toEqual([
        'good-cheap',
        'good-dear',
        'fair',
      ]);
    });

    it('puts the default provider for a task first when the task asks for no strategy, and only then', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('vendor', { quality: 0.95, cost: 0.04 }),
        new FakeImageProvider('local', { quality: 0.5, cost: 0, isDefault: true }),
      ]);
      expect(names(await registry.route(IMAGE()))).toEqual(['local', 'vendor']);
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Quality }))).toEqual(['vendor', 'local']);
    });

    it('orders by price, the better first among equals (the cost strategy)', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('dear', { quality: 0.9, cost: 0.1 }),
        new FakeImageProvider('cheap-fair', { quality: 0.5, cost: 0.01 }),
        new FakeImageProvider('cheap-good', { quality: 0.8, cost: 0.01 }),
      ]);
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Cost }))).toEqual([
        'cheap-good',
        'cheap-fair',
        'dear',
      ]);
    });

    it('prices each provider for this input: the cost strategy follows the adapters’ own estimates', async () => {
      const config = AppConfig.fromEnv({ OPENAI_API_KEY: 'sk-test', STABILITY_API_KEY: 'sk-test' });
      const { registry } = registryOf([new OpenAiImagesAdapter(config), new StabilityAdapter(config)]);
      // dall-e-3 at standard quality: $0.04; stability core: $0.03.
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Cost }))).toEqual([
        'stability',
        'openai-images',
      ]);
      // Four images: dall-e-3 makes one per request, so only stability can run it at all.
      expect(names(await registry.route(IMAGE({ n: 4 }), { strategy: RoutingStrategy.Cost }))).toEqual(['stability']);
    });

    it('orders by measured health: latency for speed, success for reliability, load for load balancing', async () => {
      const { registry, health } = registryOf([
        new FakeImageProvider('fast-flaky'),
        new FakeImageProvider('slow-steady'),
        new FakeImageProvider('unmeasured'),
      ]);
      health.health.set('fast-flaky', { latencyMs: 100, successRate: 0.5, inFlight: 4 });
      health.health.set('slow-steady', { latencyMs: 3000, successRate: 1, inFlight: 1 });
      // Never measured: assumed 5 s, so tried but not preferred for speed.
      health.health.set('unmeasured', { latencyMs: null, successRate: 1, inFlight: 2 });

      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Speed }))).toEqual([
        'fast-flaky',
        'slow-steady',
        'unmeasured',
      ]);
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.Reliability }))).toEqual([
        'slow-steady',
        'unmeasured',
        'fast-flaky',
      ]);
      expect(names(await registry.route(IMAGE(), { strategy: RoutingStrategy.LoadBalancing }))).toEqual([
        'slow-steady',
        'unmeasured',
        'fast-flaky',
      ]);
    });

    it('shares the load between equally loaded providers', async () => {
      const { registry } = registryOf([new FakeImageProvider('a'), new FakeImageProvider('b')]);
      const firsts = new Set<string>();
      for (let i = 0; i < 4; i++) {
        firsts.add((await registry.route(IMAGE(), { strategy: RoutingStrategy.LoadBalancing }))[0].name);
      }
      expect(firsts).toEqual(new Set(['a', 'b']));
    });

    it('uses the deployment’s strategy when the task names none', async () => {
      const providers = [
        new FakeImageProvider('better', { quality: 0.9, cost: 0.1 }),
        new FakeImageProvider('cheaper', { quality: 0.5, cost: 0.01 }),
      ];
      expect(names(await registryOf(providers, { PROVIDER_STRATEGY: 'cost' }).registry.route(IMAGE()))).toEqual([
        'cheaper',
        'better',
      ]);
      expect(names(await registryOf(providers, { PROVIDER_STRATEGY: 'quality' }).registry.route(IMAGE()))).toEqual([
        'better',
        'cheaper',
      ]);
    });

    it('keeps only configured providers of the type that accept the input', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('able'),
        new FakeImageProvider('no-key', { configured: false }),
        new FakeImageProvider('refuses', { problems: [fieldProblem('size', 'not this size')] }),
      ]);
      expect(names(await registry.route(IMAGE()))).toEqual(['able']);
    });

    it('fails with no_provider, saying why, when none is left', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('refuses', { problems: [fieldProblem('size', 'not this size')] }),
        new FakeImageProvider('no-key', { configured: false }),
      ]);
      const refused = await routeError(registry.route(IMAGE()));
      expect(refused).toMatchObject({ code: TaskErrorCode.NoProvider, retryable: false });
      expect(refused.message).toBe('no configured provider accepts this image_generation input');

      const noType = await routeError(
        registry.route({ type: TaskType.SubtitleGeneration, input: { text: 'Hello there.' } }),
      );
      expect(noType.message).toBe('no configured provider can run subtitle_generation tasks');

      const pinned = await routeError(registry.route(IMAGE(), { provider: 'no-key' }));
      expect(pinned.message).toBe('provider "no-key" cannot run this image_generation task or is not configured');
    });

    it('runs a task that names a provider on that provider alone', async () => {
      const { registry } = registryOf([
        new FakeImageProvider('best', { quality: 0.9 }),
        new FakeImageProvider('named', { quality: 0.1 }),
      ]);
      expect(names(await registry.route(IMAGE(), { provider: 'named' }))).toEqual(['named']);
    });

    it('routes a named model to the providers that have it', async () => {
      const config = AppConfig.fromEnv({ OPENAI_API_KEY: 'sk-test', STABILITY_API_KEY: 'sk-test' });
      const { registry } = registryOf([new OpenAiImagesAdapter(config), new StabilityAdapter(config)]);
      expect(names(await registry.route(IMAGE({ model: 'dall-e-3' })))).toEqual(['openai-images']);
      expect(names(await registry.route(IMAGE({ model: 'sd3.5-large' })))).toEqual(['stability']);
      const nobody = await routeError(registry.route(IMAGE({ model: 'imagen-4' })));
      expect(nobody.code).toBe(TaskErrorCode.NoProvider);
    });
  });

  describe('submitProblems', () => {
    it('has none when one provider that could run the task accepts it', () => {
      const { registry } = registryOf([
        new FakeImageProvider('refuses', { problems: [fieldProblem('n', 'one image only')] }),
        new FakeImageProvider('accepts'),
      ]);
      expect(registry.submitProblems(IMAGE(), {})).toEqual([]);
    });

    it('lists every provider’s problems by field, each problem once, when none accepts', () => {
      const { registry } = registryOf([
        new FakeImageProvider('a', { problems: [fieldProblem('n', 'one image only')] }),
        new FakeImageProvider('b', { problems: [fieldProblem('n', 'one image only'), fieldProblem('size', 'square')] }),
      ]);
      expect(registry.submitProblems(IMAGE(), {})).toEqual([
        { field: 'n', message: 'n: one image only' },
        { field: 'size', message: 'size: square' },
      ]);
    });

    it('names the field of a real adapter’s problem, with the message the API answers', () => {
      const config = AppConfig.fromEnv({ OPENAI_API_KEY: 'sk-test', STABILITY_API_KEY: 'sk-test' });
      const { registry } = registryOf([new OpenAiImagesAdapter(config), new StabilityAdapter(config)]);
      expect(registry.submitProblems(IMAGE({ model: 'dall-e-3' }), { provider: 'stability' })).toEqual([
        { field: 'model', message: 'model: stability cannot run dall-e-3' },
      ]);
      expect(registry.submitProblems(IMAGE({ model: 'dall-e-3', n: 2 }), {})).toEqual([
        { field: 'n', message: 'n: dall-e-3 makes one image per request' },
        { field: 'model', message: 'model: stability cannot run dall-e-3' },
      ]);
    });

    it('leaves a type nobody can run to fail at run time with no_provider', () => {
      const { registry } = registryOf([
        new FakeImageProvider('no-key', { configured: false, problems: [fieldProblem('n', 'never asked')] }),
      ]);
      expect(registry.submitProblems(IMAGE(), {})).toEqual([]);
      expect(registry.submitProblems({ type: TaskType.Caption, input: captionInput() }, {})).toEqual([]);
    });
  });

  it('abandons a task’s job: cancels it at its provider and frees its slot', async () => {
    const provider = new FakeImageProvider('async');
    const cancel = jest.spyOn(provider, 'cancel');
    const { registry, health } = registryOf([provider]);
    await registry.abandon({
      id: 'task-1',
      type: TaskType.ImageGeneration,
      input: { prompt: 'x' },
      provider: 'async',
      providerJob: { id: 'job-1' },
    });
    expect(cancel).toHaveBeenCalledWith({ id: 'job-1' });
    expect(health.released).toEqual([['async', 'task-1']]);
  });

  it('puts each image operation under its own cap, whatever the provider, from IMAGE_EDIT_CONCURRENCY', () => {
    const edit = (operation: string) => ({ type: TaskType.ImageEdit, input: { operation } });
    const { registry } = registryOf([]);
    expect(['stencil', 'enhance', 'generate', 'color_match'].map((op) => registry.taskCapsOf(edit(op)))).toEqual([
      [{ key: 'image_edit:stencil', cap: 5 }],
      [{ key: 'image_edit:enhance', cap: 3 }],
      [{ key: 'image_edit:generate', cap: 3 }],
      [{ key: 'image_edit:color_match', cap: 10 }],
    ]);
    expect(registry.taskCapsOf({ type: TaskType.ImageGeneration, input: { prompt: 'x' } })).toEqual([]);
    const set = registryOf([], { IMAGE_EDIT_CONCURRENCY: 'enhance=1' }).registry;
    expect(set.taskCapsOf(edit('enhance'))).toEqual([{ key: 'image_edit:enhance', cap: 1 }]);
    expect(set.taskCapsOf(edit('stencil'))).toEqual([{ key: 'image_edit:stencil', cap: 5 }]);
    expect(() => AppConfig.fromEnv({ IMAGE_EDIT_CONCURRENCY: 'blur=2' })).toThrow(/IMAGE_EDIT_CONCURRENCY/);
  });

  it('abandoning a task frees its task caps too, even before a provider took it', async () => {
    const { registry, health } = registryOf([]);
    await registry.abandon({
      id: 'task-2',
      type: TaskType.ImageEdit,
      input: { operation: 'stencil' },
      provider: null,
      providerJob: null,
    });
    expect(health.released).toEqual([['image_edit:stencil', 'task-2']]);
  });

  it('abandoning a task no provider admitted takes it out of every capped provider’s line for its type', async () => {
    const { registry, health } = registryOf([
      new FakeImageProvider('capped-a', { cap: 3 }),
      new FakeImageProvider('uncapped'),
      new FakeImageProvider('capped-b', { cap: 1 }),
    ]);
    health.firstInLine.set('capped-a', 'task-next');
    health.firstInLine.set('capped-b', 'task-3');
    // A split task's part joins the line of the provider it was sized for before it ever asks for a slot.
    const next = await registry.abandon({
      id: 'task-3',
      type: TaskType.ImageGeneration,
      input: { prompt: 'x' },
      provider: null,
      providerJob: null,
    });
    expect(health.released).toEqual([
      ['capped-a', 'task-3'],
      ['capped-b', 'task-3'],
    ]);
    // The task first in a line it left may run now; the task itself is not.
    expect(next).toEqual(['task-next']);
    // Nothing of another type's lines.
    health.released.length = 0;
    await registry.abandon({ id: 't', type: TaskType.Caption, input: {}, provider: null, providerJob: null });
    expect(health.released).toEqual([]);
  });
});

function captionInput(): TaskRequest<TaskType.Caption>['input'] {
  return { url_video: 'https://example.com/v.mp4', url_srt: 'https://example.com/v.srt' };
}
