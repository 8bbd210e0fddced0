import type { WebhookDeliverData, WebhookRetryData } from '../webhooks/webhook-jobs';
import { JobName, QueueName } from './queue.constants';
import { isUuid } from '../common/uuid';

/** Every job the platform enqueues; jobs carry ids only, the rows hold the state. */
export type JobItem =
  | { name: JobName.TaskRun; data: { taskId: string } }
  | { name: JobName.Reconcile; data: Record<string, never> }
  | { name: JobName.WebhookDeliver; data: WebhookDeliverData }
  | { name: JobName.WebhookRetry; data: WebhookRetryData }
  | { name: JobName.FlowStep; data: { runId: string; stepId: string; round: number } }
  | { name: JobName.FlowTick; data: { flowId: string } };

export type JobOf<N extends JobName> = Extract<JobItem, { name: N }>;
export type JobDataOf<N extends JobName> = JobOf<N>['data'];

/** Which queue carries each job; the compiler checks that every job name has one. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.TaskRun]: QueueName.Tasks,
  [JobName.Reconcile]: QueueName.Maintenance,
  [JobName.WebhookDeliver]: QueueName.Webhooks,
  [JobName.WebhookRetry]: QueueName.Webhooks,
  [JobName.FlowStep]: QueueName.Flows,
  [JobName.FlowTick]: QueueName.Flows,
};

/** Job data may predate a deploy: check its shape when it is consumed. */
export function parseTaskRunData(data: unknown): JobDataOf<JobName.TaskRun> {
  return { taskId: uuidField(data, 'taskId', JobName.TaskRun) };
}

function uuidField(data: unknown, field: string, job: JobName): string {
  const value = (data as Record<string, unknown> | null)?.[field];
  if (!isUuid(value)) {
    throw new Error(`invalid ${job} job data: ${JSON.stringify(data)}`);
  }
  return value;
}
