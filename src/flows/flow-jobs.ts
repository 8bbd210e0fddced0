import { Injectable, Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import { GroupCommit } from '../common/group-commit';
import { AppConfig } from '../config/app-config';
import { QueueBackend } from '../queue/queue-backend';
import { QueueGateway } from '../queue/queue.gateway';
import { JobName, QueueName } from '../queue/queue.constants';
import { QUEUE_PRIORITY, TaskPriority } from '../tasks/task.enums';

/** The job id of a step of a run in a round (BullMQ ids may not hold ':'). */
export function stepJobId(runId: string, stepId: string, round: number): string {
  return `${runId}.${stepId}.${round}`;
}

interface StepJob {
  runId: string;
  stepId: string;
  round: number;
  priority: TaskPriority;
}

/** The jobs of run steps on the flows queue: one per step and round, so adding one again is a no-op. */
@Injectable()
export class FlowJobs {
  private readonly logger = new Logger('FlowJobs');

  constructor(
    private readonly queue: QueueGateway,
    private readonly backend: QueueBackend,
    private readonly config: AppConfig,
  ) {}

  /** Adds that happen together (a burst of hook calls, many runs moving on at once) go as one `addBulk`. */
  private readonly adds = new GroupCommit<StepJob, void>((_key, jobs) => this.addAll(jobs));

  async add(runId: string, stepId: string, round: number, priority: TaskPriority): Promise<void> {
    await this.adds.submit('add', { runId, stepId, round, priority });
  }

  private async addAll(jobs: StepJob[]): Promise<void[]> {
    const ttl = this.config.queueJobTtlSeconds;
    await this.queue.queue(QueueName.Flows).addBulk(
      jobs.map(({ runId, stepId, round, priority }) => ({
        name: JobName.FlowStep,
        data: { runId, stepId, round },
        opts: {
          jobId: stepJobId(runId, stepId, round),
          priority: QUEUE_PRIORITY[priority] ?? QUEUE_PRIORITY[TaskPriority.Medium],
          // For the engine's own trouble (the database away): a step's failures are counted on its row.
          attempts: 5,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { age: ttl },
          removeOnFail: { age: ttl },
        },
      })),
    );
    return jobs.map(() => undefined);
  }

  /** Like add, but a failure is logged: the row is the record and the reconciler adds the job later. */
  async addOrDefer(runId: string, stepId: string, round: number, priority: TaskPriority): Promise<void> {
    try {
      await this.add(runId, stepId, round, priority);
    } catch (err) {
      this.logger.warn({ runId, stepId }, `step job deferred to the reconciler: ${(err as Error).message}`);
    }
  }

  get(runId: string, stepId: string, round: number): Promise<Job | undefined> {
    return this.queue.queue(QueueName.Flows).getJob(stepJobId(runId, stepId, round));
  }

  /** Runs a waiting step's delayed job now (QueueGateway.promoteJob). */
  promote(runId: string, stepId: string, round: number): Promise<void> {
    return this.queue.promoteJob(QueueName.Flows, stepJobId(runId, stepId, round));
  }

  /** Removes a step's job unless a worker holds it. */
  async remove(runId: string, stepId: string, round: number): Promise<void> {
    await this.backend
      .removeJob(this.queue.queue(QueueName.Flows), stepJobId(runId, stepId, round))
      .catch(() => undefined);
  }
}
