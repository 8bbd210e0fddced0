import { JobName, QueueName } from './queue.constants';

/** Every job the platform enqueues; jobs carry ids only, the rows hold the state. */
export type JobItem =
  { name: JobName.TaskRun; data: { taskId: string } } | { name: JobName.Reconcile; data: Record<string, never> };

export type JobOf<N extends JobName> = Extract<JobItem, { name: N }>;
export type JobDataOf<N extends JobName> = JobOf<N>['data'];

/** Which queue carries each job; the compiler checks that every job name has one. */
export const JOB_QUEUE: Record<JobName, QueueName> = {
  [JobName.TaskRun]: QueueName.Tasks,
  [JobName.Reconcile]: QueueName.Maintenance,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Job data may predate a deploy: check its shape when it is consumed. */
export function parseTaskRunData(data: unknown): JobDataOf<JobName.TaskRun> {
  const taskId = (data as { taskId?: unknown } | null)?.taskId;
  if (typeof taskId !== 'string' || !UUID.test(taskId)) {
    throw new Error(`invalid ${JobName.TaskRun} job data: ${JSON.stringify(data)}`);
  }
  return { taskId };
}
