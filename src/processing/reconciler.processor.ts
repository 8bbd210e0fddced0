import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Job, Worker } from 'bullmq';
import { AppConfig } from '../config/app-config';
import { BatchesRepository } from '../batches/batches.repository';
import { ResultCache } from '../cache/result-cache.service';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { QueueBackend } from '../queue/queue-backend';
import { QueueGateway } from '../queue/queue.gateway';
import { WebhookQueue } from '../webhooks/webhook-queue.service';
import { WebhookDeliveriesRepository } from '../webhooks/webhook-deliveries.repository';
import { JobName, QueueName, RECONCILE_SCHEDULER_ID } from '../queue/queue.constants';
import { TaskStateMachine } from '../tasks/task-state-machine';
import { TaskErrorCode, TaskPriority, TaskStatus, TaskType } from '../tasks/task.enums';
import { delayUntil, TasksService } from '../tasks/tasks.service';
import { TasksRepository } from '../tasks/tasks.repository';
import { UploadsService } from '../uploads/uploads.service';
import { FlowJobs } from '../flows/flow-jobs';
import { FlowsRepository } from '../flows/flows.repository';
import { OutputRetention } from './output-retention';
import { partsSettled } from './steps/collect-parts.step';
import { resolveTaskTimeouts } from './task-timeouts';

const BATCH = 500;

export interface ReconcileReport {
  checked: number;
  enqueued: number;
  timedOut: number;
  failed: number;
  /** Webhook deliveries whose job was missing, put back on their queue. */
  deliveries: number;
  /** Idempotency keys past their 24 hours, deleted. */
  idempotencyKeysSwept: number;
  /** Cache entries on this host's disk past 7 days or over CACHE_DISK_MAX_BYTES, deleted. */
  cacheEntriesEvicted: number;
  /** Batches whose tasks had all finished but that were still open (their completion check was lost). */
  batchesClosed: number;
  /** Uploads past UPLOAD_TTL, deleted from storage and the table. */
  uploadsSwept: number;
  /** Live flow runs whose current step had no live job, given one again. */
  flowSteps: number;
  /** Stored files deleted past OUTPUT_RETENTION_DAYS (task outputs and uploads). */
  retentionFilesDeleted: number;
}

/**
 * DESIGN decision 2: Postgres is the record, so tasks left `queued` or `processing` without a live job (a crash
 * between insert and enqueue, a worker that died, a flushed Redis) are put back on the queue, and tasks past their
 * timeout are failed. Runs from a BullMQ job scheduler on the maintenance queue, whose worker (one job at a time) is
 * built at bootstrap on the queue backend in use.
 */
@Injectable()
export class ReconcilerProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Reconciler');
  private readonly timeouts: Record<TaskType, number>;
  private ensureTimer?: NodeJS.Timeout;
  private worker?: Worker;

  constructor(
    private readonly config: AppConfig,
    private readonly tasks: TasksRepository,
    private readonly stateMachine: TaskStateMachine,
    private readonly queue: QueueGateway,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly webhooks: WebhookQueue,
    private readonly idempotency: IdempotencyRepository,
    private readonly cache: ResultCache,
    private readonly batches: BatchesRepository,
    private readonly service: TasksService,
    private readonly backend: QueueBackend,
    private readonly uploads: UploadsService,
    private readonly flows: FlowsRepository,
    private readonly flowJobs: FlowJobs,
    private readonly retention: OutputRetention,
  ) {
    this.timeouts = resolveTaskTimeouts(config.taskTimeoutOverrides);
  }

  onApplicationBootstrap(): void {
    this.worker = this.backend.createWorker(QueueName.Maintenance, (job) => this.process(job), { concurrency: 1 });
    // Without a listener BullMQ prints connection errors to stderr; they are expected while its datastore is away.
    this.worker.on('error', (err: Error) => this.logger.warn(`worker: ${err.message}`));
    // The scheduler lives with the jobs: re-assert it now and then so a flushed or replaced Redis gets it back.
    const ensure = () =>
      this.ensureScheduler().catch((err: Error) => this.logger.warn(`scheduler not registered: ${err.message}`));
    void ensure();
    this.ensureTimer = setInterval(() => void ensure(), Math.max(this.config.reconcileIntervalMs, 1000)).unref();
  }

  /** Before the database closes, so a pass under way finishes its writes; no new pass starts meanwhile. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.ensureTimer);
    await this.worker?.close();
  }

  async ensureScheduler(): Promise<void> {
    await this.queue
      .queue(QueueName.Maintenance)
      .upsertJobScheduler(
        RECONCILE_SCHEDULER_ID,
        { every: this.config.reconcileIntervalMs },
        { name: JobName.Reconcile, data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } },
      );
  }

  async process(job: Job): Promise<ReconcileReport> {
    if (job.name !== (JobName.Reconcile as string)) throw new Error(`unknown maintenance job ${job.name}`);
    return this.reconcile();
  }

  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      checked: 0,
      enqueued: 0,
      timedOut: 0,
      failed: 0,
      deliveries: 0,
      idempotencyKeysSwept: 0,
      cacheEntriesEvicted: 0,
      uploadsSwept: 0,
      batchesClosed: 0,
      flowSteps: 0,
      retentionFilesDeleted: 0,
    };
    const stale = await this.tasks.findStale(this.config.reconcileGraceMs, BATCH);
    for (const task of stale) {
      report.checked++;
      const deadline = task.startedAt ? task.startedAt.getTime() + this.timeouts[task.type] : undefined;
      if (task.status === TaskStatus.Processing && deadline !== undefined && Date.now() >= deadline) {
        const failed = await this.stateMachine.fail(
          task.id,
          {
            code: TaskErrorCode.Timeout,
            message: `the task ran longer than its timeout of ${this.timeouts[task.type] / 1000} s`,
          },
          { from: [TaskStatus.Processing] },
        );
        if (failed) {
          report.timedOut++;
          // Its worker may be gone, but its provider job may still run (and bill), and a split task's parts too.
          await this.service.stop(failed, TaskStatus.Processing);
        }
        continue;
      }
      const job = await this.queue.getTaskJob(task.id);
      const state = job ? await job.getState() : 'missing';
      // A split task whose parts have all ended, or one failed for good, while the queue did not move its job on (a
      // part that failed while the task's job was still linking them): run it again; its parts' rows say how it ends.
      const stuck = state === 'waiting-children' && !!task.parts && partsSettled(await this.tasks.findParts(task.id));
      if (state === 'failed' && job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        // BullMQ gave up but the final-failure hook did not land (e.g. Postgres was down then).
        const failed = await this.stateMachine.fail(task.id, {
          code: TaskErrorCode.InternalError,
          message: job.failedReason || 'the task failed after its last attempt',
        });
        if (failed) report.failed++;
        continue;
      }
      if (stuck || state === 'missing' || state === 'completed' || state === 'failed' || state === 'unknown') {
        if (job) await job.remove().catch(() => undefined);
        if (task.status === TaskStatus.Processing) {
          // Its worker is gone: run it again from the queue.
          if (!(await this.stateMachine.requeue(task.id, [TaskStatus.Processing]))) continue;
        }
        // A task that asked to start later keeps waiting for its time (run_at), whoever adds its job.
        await this.queue.enqueueTask(task, { delay: delayUntil(task.runAt) });
        report.enqueued++;
        this.logger.warn(
          { taskId: task.id, jobState: state },
          `re-enqueued a ${task.status} task that had no live job`,
        );
        continue;
      }
      // A live job (waiting, delayed, active…): look at other tasks first next time.
      await this.tasks.touch(task.id, task.status);
    }
    report.deliveries = await this.reconcileDeliveries();
    report.flowSteps = await this.reconcileFlowRuns();
    report.idempotencyKeysSwept = await this.idempotency.sweep(BATCH);
    report.cacheEntriesEvicted = await this.cache.sweepDisk().catch(() => 0);
    report.uploadsSwept = await this.uploads.sweepExpired();
    report.retentionFilesDeleted = (await this.retention.sweep()).files;
    for (const batchId of await this.batches.findFinishedOpen(BATCH)) {
      const closed = await this.batches.closeIfFinished(batchId);
      if (closed) report.batchesClosed++;
      if (closed?.deliveryId) this.webhooks.dispatch(closed.deliveryId);
    }
    if (report.enqueued || report.timedOut || report.failed || report.flowSteps) this.logger.log(report, 'reconciled');
    return report;
  }

  /**
   * Live flow runs (queued, running, waiting) untouched for the grace period whose current step has no live job (a
   * crash between a step's commit and the next add, a flushed Redis): the step's job is added again (its id is known
   * from the row). A completed step is never re-run: its job only makes sure the next one exists.
   */
  private async reconcileFlowRuns(): Promise<number> {
    let added = 0;
    for (const run of await this.flows.findStaleRuns(this.config.reconcileGraceMs, BATCH)) {
      if (!run.currentStep) continue;
      const job = await this.flowJobs.get(run.id, run.currentStep, run.round);
      const state = job ? await job.getState() : 'missing';
      if (['missing', 'completed', 'failed', 'unknown'].includes(state)) {
        if (job) await job.remove().catch(() => undefined);
        const flow = await this.flows.findFlow(run.flowId);
        await this.flowJobs.add(run.id, run.currentStep, run.round, flow?.priority ?? TaskPriority.Medium);
        this.logger.warn({ runId: run.id, step: run.currentStep, jobState: state }, 're-enqueued a flow step');
        added++;
      } else {
        await this.flows.touchRun(run.id);
      }
    }
    return added;
  }

  /**
   * Deliveries overdue by the grace period: their job may be lost (Redis flushed, an enqueue that failed after the
   * row was written). Adding the job again is a no-op when it still exists: a first attempt's job id is the
   * delivery id, a round of retries' is the delivery id and the attempts it started after.
   */
  private async reconcileDeliveries(): Promise<number> {
    const overdue = await this.deliveries.takeOverdue(this.config.reconcileGraceMs, BATCH);
    // Together, so the first attempts reach the queue as one bulk add.
    await Promise.all(
      overdue.map(({ id, attempts }) =>
        attempts === 0 ? this.webhooks.add(id) : this.webhooks.addRetry(id, attempts),
      ),
    );
    return overdue.length;
  }
}
