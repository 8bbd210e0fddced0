/*
 * WARNING: queue and job names are stored in Redis with every job. Renaming one strands the jobs already enqueued
 * under the old name; add a new name and drain the old one instead.
 */
export enum QueueName {
  Tasks = 'tasks',
  Maintenance = 'maintenance',
  Webhooks = 'webhooks',
  /** The steps of flow runs, and the ticks of scheduled flows. */
  Flows = 'flows',
}

export enum JobName {
  TaskRun = 'task.run',
  Reconcile = 'maintenance.reconcile',
  WebhookDeliver = 'webhook.deliver',
  WebhookRetry = 'webhook.retry',
  /** One step of a flow run (jobId: `<run id>.<step id>.<round>`). */
  FlowStep = 'flow.step',
  /** A tick of a scheduled flow (from its BullMQ job scheduler): starts one run. */
  FlowTick = 'flow.tick',
}

/** The custom BullMQ backoff of task jobs (stored with every job; see processing/retry-policy.ts). */
export const TASK_BACKOFF_TYPE = 'task-retry';

/** The custom BullMQ backoff of webhook retry jobs (stored with every job; see webhooks/webhook-retry-policy.ts). */
export const WEBHOOK_BACKOFF_TYPE = 'webhook-retry';

/** The job scheduler id of the reconciler (one per deployment, whatever the number of workers). */
export const RECONCILE_SCHEDULER_ID = 'reconcile-tasks';

/**
 * BullMQ key prefix: a Redis Cluster hash tag, so every key of a queue lands in one slot.
 */
export function bullPrefix(redisPrefix: string): string {
  return `{${redisPrefix}}`;
}

/**
 * The Postgres schema of BullMQ's own tables on QUEUE_BACKEND=postgres (BullMQ's default). Created and migrated by
 * BullMQ's migrator at boot, with the platform's migrations; renaming it strands the jobs stored under the old one.
 */
export const BULLMQ_SCHEMA = 'bullmq';
