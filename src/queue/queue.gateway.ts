import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Job, JobsOptions, Queue } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../config/app-config';
import { DependencyUnavailableException } from '../common/domain-exception';
import { QUEUE_PRIORITY, TaskPriority } from '../tasks/task.enums';
import { JOB_QUEUE, JobDataOf, JobItem } from './job.types';
import { JobName, QueueName, TASK_BACKOFF_TYPE } from './queue.constants';
import { QueueBackend } from './queue-backend';
import { withTimeout } from './redis.service';

/** How long a submit waits for the queue to take a job before answering anyway (the reconciler enqueues it later). */
const ENQUEUE_TIMEOUT_MS = 2000;
/** When a promoted job was found held by a worker: look again after these (ms). */
const PROMOTE_RETRY_MS = [0, 25, 50, 75];

/** The one way into the queues: job names map to their queue, task jobs get `jobId = task id`. */
@Injectable()
export class QueueGateway {
  private readonly logger = new Logger('QueueGateway');
  private readonly queues: Record<QueueName, Queue>;

  constructor(
    @InjectQueue(QueueName.Tasks) tasks: Queue,
    @InjectQueue(QueueName.Maintenance) maintenance: Queue,
    @InjectQueue(QueueName.Webhooks) webhooks: Queue,
    @InjectQueue(QueueName.Flows) flows: Queue,
    private readonly backend: QueueBackend,
    private readonly config: AppConfig,
  ) {
    this.queues = {
      [QueueName.Tasks]: tasks,
      [QueueName.Maintenance]: maintenance,
      [QueueName.Webhooks]: webhooks,
      [QueueName.Flows]: flows,
    };
    // Without a listener BullMQ prints connection errors to stderr; they are expected while its datastore is away.
    for (const queue of this.allQueues())
      queue.on('error', (err: Error) => this.logger.warn(`queue ${queue.name}: ${err.message}`));
  }

  queue(name: QueueName): Queue {
    return this.queues[name];
  }

  allQueues(): Queue[] {
    return Object.values(this.queues);
  }

  /** Throws 503 when the queues' datastore is known to be away, before anything is written. */
  assertAvailable(): void {
    if (!this.backend.isAvailable) throw new DependencyUnavailableException(this.backend.dependency);
  }

  /** The datastore a 503 names when a queue operation does not answer. */
  get dependency(): 'redis' | 'postgres' {
    return this.backend.dependency;
  }

  async enqueue<N extends JobName>(name: N, data: JobDataOf<N>, opts: JobsOptions = {}): Promise<Job> {
    const item = { name, data } as JobItem;
    return this.queues[JOB_QUEUE[name]].add(item.name, item.data, opts);
  }

  /**
   * Adds the run job of a task; a second add with the same id is a no-op, so callers may repeat it. With `parent`
   * (the job of the task it is a part of), the parent job waits for it, and goes on as soon as it fails for good.
   */
  async enqueueTask(
    task: { id: string; priority: TaskPriority },
    opts: { delay?: number; parent?: { id: string; queue: string } } = {},
  ): Promise<void> {
    const ttl = this.config.queueJobTtlSeconds;
    const parent = opts.parent ? { parent: opts.parent, continueParentOnFailure: true } : {};
    await withTimeout(
      this.enqueue(
        JobName.TaskRun,
        { taskId: task.id },
        {
          jobId: task.id,
          priority: QUEUE_PRIORITY[task.priority],
          attempts: this.config.taskMaxAttempts,
          backoff: { type: TASK_BACKOFF_TYPE },
          // Whole milliseconds: BullMQ on Postgres keeps the time as a bigint.
          delay: opts.delay === undefined ? undefined : Math.ceil(opts.delay),
          removeOnComplete: { age: ttl },
          removeOnFail: { age: ttl },
          ...parent,
        },
      ),
      ENQUEUE_TIMEOUT_MS,
      'enqueue timed out',
    );
  }

  /** Like enqueueTask, but a failure is logged instead of thrown: the row is the record, the reconciler retries. */
  async enqueueTaskOrDefer(
    task: { id: string; priority: TaskPriority },
    opts: { delay?: number } = {},
  ): Promise<boolean> {
    try {
      await this.enqueueTask(task, opts);
      return true;
    } catch (err) {
      this.logger.warn({ taskId: task.id }, `enqueue deferred to the reconciler: ${(err as Error).message}`);
      return false;
    }
  }

  async getTaskJob(taskId: string): Promise<Job | undefined> {
    return this.queues[QueueName.Tasks].getJob(taskId);
  }

  /** Runs a task's delayed job now (its next poll or look, brought forward): see promoteJob. */
  promoteTaskJob(taskId: string): Promise<void> {
    return this.promoteJob(QueueName.Tasks, taskId);
  }

  /**
   * Runs a delayed job now (a waiting task's or flow step's next look, brought forward). Best effort: a job that is
   * waiting or gone is left as it is, since it will look by itself. A job a worker still holds may be on its way to
   * delayed (its run has just said "later"): it is tried again a few times within 150 ms, so a wake-up that comes
   * in that instant is not lost.
   */
  async promoteJob(name: QueueName, jobId: string): Promise<void> {
    for (const waitMs of PROMOTE_RETRY_MS) {
      if (waitMs) await sleep(waitMs);
      const found = await this.backend.promoteDelayed(this.queues[name], jobId).catch(() => 'other');
      if (found !== 'active') return;
    }
  }

  /** Removes a task's job unless a worker holds it; true when no job is left behind. */
  async removeTaskJob(taskId: string): Promise<boolean> {
    // Locked by a worker: the cancel signal stops it.
    return this.backend.removeJob(this.queues[QueueName.Tasks], taskId);
  }
}
