import { BeforeApplicationShutdown, DynamicModule, Injectable, Module, OnApplicationBootstrap } from '@nestjs/common';
import type { Worker } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { AppConfig } from '../../src/config/app-config';
import { FlowHookDirectory, FlowRunStarter, HookTarget, StartRun } from '../../src/flows/flow-ports';
import { FlowHooksHttpModule, FlowTriggersModule } from '../../src/flows/triggers/flow-triggers.module';
import { FlowTickHandler } from '../../src/flows/triggers/flow-tick.handler';
import { QueueName } from '../../src/queue/queue.constants';
import { QueueBackend } from '../../src/queue/queue-backend';

/**
 * Test doubles of the runs' seam: runs in a map (shared by every app given the same instance, as one database would
 * be), a repeat of a dedupe key answers the first run. Flows in `flows` exist; others answer null.
 */
export class InMemoryFlowRuns extends FlowRunStarter {
  readonly flows = new Set<string>();
  readonly runs: (StartRun & { runId: string })[] = [];
  /** Every call, a repeat included. */
  readonly calls: StartRun[] = [];
  private readonly byKey = new Map<string, string>();

  start(request: StartRun): Promise<{ runId: string; created: boolean } | null> {
    this.calls.push(request);
    if (!this.flows.has(request.flowId)) return Promise.resolve(null);
    const key = request.dedupeKey === undefined ? undefined : `${request.flowId}/${request.dedupeKey}`;
    const known = key === undefined ? undefined : this.byKey.get(key);
    if (known) return Promise.resolve({ runId: known, created: false });
    const runId = randomUUID();
    if (key !== undefined) this.byKey.set(key, runId);
    this.runs.push({ ...request, runId });
    return Promise.resolve({ runId, created: true });
  }

  runsOf(flowId: string): (StartRun & { runId: string })[] {
    return this.runs.filter((r) => r.flowId === flowId);
  }
}

export class InMemoryHookDirectory extends FlowHookDirectory {
  readonly hooks = new Map<string, HookTarget>();

  find(hookId: string): Promise<HookTarget | null> {
    return Promise.resolve(this.hooks.get(hookId) ?? null);
  }
}

/** The flows worker's part for ticks, until the runs' own worker calls FlowTickHandler. */
@Injectable()
class TickWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private worker?: Worker;

  constructor(
    private readonly backend: QueueBackend,
    private readonly ticks: FlowTickHandler,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.runsWorkers) return;
    this.worker = this.backend.createWorker(QueueName.Flows, (job) => this.ticks.handle(job), { concurrency: 2 });
    this.worker.on('error', () => undefined);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}

@Module({})
class FlowDoublesModule {}

/** The triggers' modules with the doubles of the runs' seam, for TestApp's `modules`. */
export function flowTriggersWithDoubles(runs: InMemoryFlowRuns, hooks = new InMemoryHookDirectory()): DynamicModule {
  return {
    module: FlowDoublesModule,
    global: true,
    imports: [FlowTriggersModule, FlowHooksHttpModule],
    providers: [
      { provide: FlowRunStarter, useValue: runs },
      { provide: FlowHookDirectory, useValue: hooks },
      TickWorker,
    ],
    exports: [FlowRunStarter, FlowHookDirectory],
  };
}
