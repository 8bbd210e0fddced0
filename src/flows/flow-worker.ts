import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { JobName, QueueName } from '../queue/queue.constants';
import { QueueBackend } from '../queue/queue-backend';
import { TaskSignalsService } from '../queue/task-signals.service';
import { FlowEngine } from './flow-engine';
import { FlowTickHandler } from './triggers/flow-tick.handler';

export type FlowJobHandler = (job: Job, token?: string) => Promise<unknown>;

/**
 * The BullMQ worker of the flows queue, built at bootstrap (worker roles only), FLOW_WORKER_CONCURRENCY jobs at a
 * time. Step jobs go to the FlowEngine; other jobs of the queue (a schedule's ticks) to the handler registered for
 * their name.
 */
@Injectable()
export class FlowWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('FlowWorker');
  private readonly handlers = new Map<string, FlowJobHandler>();
  private worker?: Worker;

  constructor(
    private readonly config: AppConfig,
    private readonly backend: QueueBackend,
    private readonly engine: FlowEngine,
    private readonly signals: TaskSignalsService,
    @Optional() ticks?: FlowTickHandler,
  ) {
    this.handlers.set(JobName.FlowStep, (job, token) => this.engine.process(job, token));
    if (ticks) this.handlers.set(JobName.FlowTick, (job) => ticks.handle(job));
  }

  /** Registers the handler of another job of the flows queue (JobName.FlowTick: the schedules' ticks). */
  handle(name: JobName, handler: FlowJobHandler): void {
    this.handlers.set(name, handler);
  }

  onApplicationBootstrap(): void {
    const worker = this.backend.createWorker(QueueName.Flows, (job, token) => this.dispatch(job, token), {
      concurrency: this.config.flowWorkerConcurrency,
      lockDuration: this.config.workerLockMs,
      lockRenewTime: this.config.workerLockMs / 2,
      stalledInterval: this.config.workerLockMs,
      autorun: false,
    });
    this.worker = worker;
    worker.on('error', (err: Error) => this.logger.warn(`worker: ${err.message}`));
    worker.on('failed', (job: Job | undefined, err: Error) => void this.onFailed(job, err));
    // A run cancelled anywhere: its steps running here stop (the cancel channel carries run ids too).
    this.signals.onCancel((id) => this.engine.abortRun(id));
    void worker.run().catch((err: Error) => this.logger.error(`worker stopped: ${err.message}`));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }

  /** A step job BullMQ gives up on fails its run (the final-failure hook); other failures are logged. */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job) return;
    this.logger.warn({ jobId: job.id }, `flow job failed: ${err.message}`);
    const final =
      err instanceof UnrecoverableError ||
      err.name === 'UnrecoverableError' ||
      job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final || job.name !== (JobName.FlowStep as string)) return;
    await this.engine
      .onJobFailedForGood(job.data, err)
      .catch((e: Error) => this.logger.error({ jobId: job.id }, `run not marked failed: ${e.message}`));
  }

  private dispatch(job: Job, token?: string): Promise<unknown> {
    const handler = this.handlers.get(job.name);
    if (!handler) throw new Error(`no handler for flows job ${job.name}`);
    return handler(job, token);
  }
}
