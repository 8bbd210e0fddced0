import { Check, Column, Entity, ForeignKey, Index, PrimaryColumn } from 'typeorm';
import { BatchEntity } from '../../batches/entities/batch.entity';
import { RoutingStrategy, TaskPriority, TaskStatus, TaskType } from '../task.enums';

/** What a new task needs; everything else starts at its initial value. */
export type NewTask = Pick<TaskEntity, 'id' | 'userId' | 'type' | 'input'> & Partial<TaskEntity>;

export interface TaskError {
  code: string;
  message: string;
  retryable?: boolean;
}

export interface TaskCost {
  amount: number;
  currency: string;
}

/** Per-task routing and caching choices made at submit. */
export interface TaskOptions {
  provider?: string;
  strategy?: RoutingStrategy;
  cache?: 'use' | 'bypass';
  /** `sources`: webhooks carry the body of the video API of the sources ({jobId, status, result, error, id_roteiro}). */
  webhook_format?: 'sources';
}

const numeric = {
  to: (value?: number | null) => value,
  from: (value?: string | null) => (value == null ? null : Number(value)),
};

/**
 * A row of `tasks`, as the migrations made it (test/schema-drift.int.spec.ts keeps the two in step). One thing the
 * decorators cannot say: the DESC order of the two listing indexes' columns, which only their migration holds.
 */
@Entity('tasks')
@Check('tasks_status_check', `status IN ('pending', 'queued', 'processing', 'completed', 'failed', 'cancelled')`)
@Check('tasks_priority_check', `priority IN ('low', 'medium', 'high', 'urgent')`)
@Index('tasks_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('tasks_created_idx', ['createdAt', 'id'])
@Index('tasks_status_idx', ['status'])
// Every column GET /statistics reads: its per-user aggregates are index-only scans of the user's entries.
@Index('tasks_user_statistics_idx', [
  'userId',
  'status',
  'type',
  'priority',
  'provider',
  'parentId',
  'parts',
  'startedAt',
  'completedAt',
  'costAmount',
])
@Index('tasks_unfinished_idx', ['status', 'updatedAt'], { where: `status IN ('pending', 'queued', 'processing')` })
@Index('tasks_user_unfinished_idx', ['userId'], { where: `status IN ('pending', 'queued', 'processing')` })
@Index('tasks_batch_idx', ['batchId'], { where: 'batch_id IS NOT NULL' })
@Index('tasks_flow_run_idx', ['flowRunId'], { where: 'flow_run_id IS NOT NULL' })
@Index('tasks_kept_outputs_idx', ['completedAt'], { where: `output ? 'files' AND NOT output ? 'expired_at'` })
@Index('tasks_parent_part_idx', ['parentId', 'partIndex'], { unique: true, where: 'parent_id IS NOT NULL' })
export class TaskEntity {
  /** A task as submitted: queued, event 1 (`task.created`) announced, nothing run yet. */
  static create(init: NewTask): TaskEntity {
    const now = init.createdAt ?? new Date();
    return Object.assign(new TaskEntity(), {
      status: TaskStatus.Queued,
      priority: TaskPriority.Medium,
      progress: 0,
      output: null,
      error: null,
      provider: null,
      attempts: 0,
      costAmount: null,
      costCurrency: null,
      cached: false,
      options: {},
      webhookUrl: null,
      webhookSecret: null,
      webhookEvents: null,
      metadata: null,
      batchId: null,
      parentId: null,
      partIndex: null,
      parts: null,
      eventSeq: 1,
      providerJob: null,
      flowRunId: null,
      flowStepId: null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      completedAt: null,
      runAt: null,
      ...init,
    });
  }

  @PrimaryColumn('uuid')
  id: string;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text')
  type: TaskType;

  @Column('text')
  status: TaskStatus;

  @Column('text')
  priority: TaskPriority;

  @Column('real', { default: 0 })
  progress: number;

  @Column('jsonb')
  input: Record<string, unknown>;

  @Column('jsonb', { nullable: true })
  output: Record<string, unknown> | null;

  @Column('jsonb', { nullable: true })
  error: TaskError | null;

  @Column('text', { nullable: true })
  provider: string | null;

  @Column('int', { default: 0 })
  attempts: number;

  @Column('numeric', { name: 'cost_amount', precision: 12, scale: 6, nullable: true, transformer: numeric })
  costAmount: number | null;

  @Column('text', { name: 'cost_currency', nullable: true })
  costCurrency: string | null;

  @Column('boolean', { default: false })
  cached: boolean;

  @Column('jsonb', { default: {} })
  options: TaskOptions;

  @Column('text', { name: 'webhook_url', nullable: true })
  webhookUrl: string | null;

  /** Write-only: used to sign deliveries, never returned or logged. */
  @Column('text', { name: 'webhook_secret', nullable: true, select: false })
  webhookSecret?: string | null;

  @Column('text', { name: 'webhook_events', array: true, nullable: true })
  webhookEvents: string[] | null;

  @Column('jsonb', { nullable: true })
  metadata: Record<string, unknown> | null;

  /** The batch this task was submitted in (POST /batch), if any. */
  @Column('uuid', { name: 'batch_id', nullable: true })
  @ForeignKey(() => BatchEntity, { name: 'tasks_batch_id_fkey', onDelete: 'NO ACTION' })
  batchId: string | null;

  /** A part of a split img2vid: the task it belongs to (which aggregates the parts' clips in `part_index` order). */
  @Column('uuid', { name: 'parent_id', nullable: true })
  @ForeignKey(() => TaskEntity, { name: 'tasks_parent_id_fkey', onDelete: 'CASCADE' })
  parentId: string | null;

  @Column('int', { name: 'part_index', nullable: true })
  partIndex: number | null;

  /** A split img2vid: into how many parts (null: it runs whole). */
  @Column('int', { nullable: true })
  parts: number | null;

  /** Sequence of the last event emitted for this task; bumped by every transition. */
  @Column('int', { name: 'event_seq', default: 0 })
  eventSeq: number;

  /** Provider-side job handle of an async provider, so a restarted worker re-attaches instead of resubmitting. */
  @Column('jsonb', { name: 'provider_job', nullable: true })
  providerJob: Record<string, unknown> | null;

  /** The flow run whose step waits for this task (its end wakes that step). */
  @Column('uuid', { name: 'flow_run_id', nullable: true })
  flowRunId: string | null;

  @Column('text', { name: 'flow_step_id', nullable: true })
  flowStepId: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;

  @Column('timestamptz', { name: 'started_at', nullable: true })
  startedAt: Date | null;

  @Column('timestamptz', { name: 'completed_at', nullable: true })
  completedAt: Date | null;

  /** When the task asked to start (`run_at`); null: at once. Its job is delayed until then. */
  @Column('timestamptz', { name: 'run_at', nullable: true })
  runAt: Date | null;
}
