import { Check, Column, Entity, ForeignKey, Index, PrimaryColumn } from 'typeorm';
import { BatchEntity } from '../../batches/entities/batch.entity';
import { TaskEntity } from '../../tasks/entities/task.entity';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dead';

/** One attempt, as `attempt_log` keeps it (and the API shows it). */
export interface DeliveryAttempt {
  at: string;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  response_excerpt: string | null;
}

/**
 * A row of `webhook_deliveries`: one per (event, URL), written in the same transaction as the change that makes the
 * event. The row's id is the `webhook-id` header. One thing the decorators cannot say: the DESC order of the listing
 * indexes' columns, which only their migration holds.
 */
@Entity('webhook_deliveries')
@Check('webhook_deliveries_status_check', `status IN ('pending', 'delivered', 'failed', 'dead')`)
// First attempts of one task's deliveries to one URL go out in sequence order: the waiting ones are found here.
@Index('webhook_deliveries_order_idx', ['taskId', 'url', 'sequence'], { where: 'attempts = 0' })
@Index('webhook_deliveries_task_idx', ['taskId', 'sequence'])
@Index('webhook_deliveries_user_idx', ['userId', 'status', 'createdAt', 'id'])
@Index('webhook_deliveries_status_idx', ['status', 'createdAt', 'id'])
// The reconciler's scan: unfinished deliveries only.
@Index('webhook_deliveries_due_idx', ['nextAttemptAt'], { where: `status IN ('pending', 'failed')` })
// At most one batch.completed delivery per batch.
@Index('webhook_deliveries_batch_idx', ['batchId'], { unique: true, where: 'batch_id IS NOT NULL' })
// A flow run's deliveries (its events and its notify steps).
@Index('webhook_deliveries_flow_run_idx', ['flowRunId', 'createdAt'], { where: 'flow_run_id IS NOT NULL' })
// A run's line to one URL, in sequence order (as webhook_deliveries_order_idx is a task's).
@Index('webhook_deliveries_flow_order_idx', ['flowRunId', 'url', 'sequence'], {
  where: 'attempts = 0 AND flow_run_id IS NOT NULL',
})
export class WebhookDeliveryEntity {
  /** A delivery not yet attempted, made at `createdAt`. */
  static create(
    init: Pick<
      WebhookDeliveryEntity,
      'id' | 'userId' | 'eventType' | 'sequence' | 'url' | 'body' | 'nextAttemptAt' | 'createdAt'
    > &
      Partial<WebhookDeliveryEntity>,
  ): WebhookDeliveryEntity {
    return Object.assign(new WebhookDeliveryEntity(), {
      taskId: null,
      batchId: null,
      flowRunId: null,
      secret: null,
      status: 'pending',
      attempts: 0,
      roundAttempts: 0,
      attemptLog: [],
      lastStatusCode: null,
      lastError: null,
      updatedAt: init.createdAt,
      deliveredAt: null,
      leaseUntil: null,
      ...init,
    });
  }

  @PrimaryColumn('uuid')
  id: string;

  @Column('uuid', { name: 'task_id', nullable: true })
  @ForeignKey(() => TaskEntity, { name: 'webhook_deliveries_task_id_fkey', onDelete: 'CASCADE' })
  taskId: string | null;

  /** A delivery without a task may belong to a batch (batch.completed): it is signed with the batch's secret. */
  @Column('uuid', { name: 'batch_id', nullable: true })
  @ForeignKey(() => BatchEntity, { name: 'webhook_deliveries_batch_id_fkey', onDelete: 'CASCADE' })
  batchId: string | null;

  /** A delivery of a flow run: one of its events, or a notify step's POST. No task, no batch. */
  @Column('uuid', { name: 'flow_run_id', nullable: true })
  flowRunId: string | null;

  /**
   * The delivery's own signing secret (a notify step's, a flow's), used when it has no task or batch to take one
   * from; never selected with the row, never returned.
   */
  @Column('text', { nullable: true, select: false })
  secret?: string | null;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text', { name: 'event_type' })
  eventType: string;

  @Column('int')
  sequence: number;

  @Column('text')
  url: string;

  /** The exact bytes sent and signed. */
  @Column('text')
  body: string;

  @Column('text', { default: 'pending' })
  status: DeliveryStatus;

  @Column('int', { default: 0 })
  attempts: number;

  /** Attempts since the last replay (a replay starts a fresh round of retries). */
  @Column('int', { name: 'round_attempts', default: 0 })
  roundAttempts: number;

  @Column('jsonb', { name: 'attempt_log', default: () => `'[]'` })
  attemptLog: DeliveryAttempt[];

  @Column('timestamptz', { name: 'next_attempt_at', nullable: true })
  nextAttemptAt: Date | null;

  @Column('int', { name: 'last_status_code', nullable: true })
  lastStatusCode: number | null;

  @Column('text', { name: 'last_error', nullable: true })
  lastError: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;

  @Column('timestamptz', { name: 'delivered_at', nullable: true })
  deliveredAt: Date | null;

  /** While set and in the future, a sender holds the row for an attempt; nobody else sends it. */
  @Column('timestamptz', { name: 'lease_until', nullable: true, select: false })
  leaseUntil?: Date | null;
}
