import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import type { FlowTrigger, RunSource } from '../flow-ports';
import type { FlowStep } from '../flow-step.types';
import { TaskPriority } from '../../tasks/task.enums';

export type FlowRunStatus = 'queued' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';
export type FlowStepStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export const FINISHED_RUN_STATUSES: readonly FlowRunStatus[] = ['completed', 'failed', 'cancelled'];

export interface FlowError {
  code: string;
  message: string;
  step_id?: string;
}

/** A row of `flows`: a user's flow, at its current version (the steps live in flow_versions). */
@Entity('flows')
@Index('flows_hook_id_key', ['hookId'], { unique: true })
@Index('flows_user_created_idx', ['userId', 'createdAt', 'id'])
export class FlowEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text')
  name: string;

  @Column('text', { nullable: true })
  description: string | null;

  @Column('int')
  version: number;

  /** As given, the hook secret included: never returned. */
  @Column('jsonb')
  trigger: FlowTrigger;

  /** The unguessable id of the flow's inbound hook (webhook triggers only). */
  @Column('text', { name: 'hook_id', nullable: true })
  hookId: string | null;

  @Column('text')
  priority: TaskPriority;

  @Column('text', { name: 'webhook_url', nullable: true })
  webhookUrl: string | null;

  @Column('text', { name: 'webhook_events', array: true, nullable: true })
  webhookEvents: string[] | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;

  @Column('timestamptz', { name: 'deleted_at', nullable: true })
  deletedAt: Date | null;
}

/** A row of `flow_versions`: the steps and trigger of one version of a flow. */
@Entity('flow_versions')
export class FlowVersionEntity {
  @PrimaryColumn('uuid', { name: 'flow_id' })
  flowId: string;

  @PrimaryColumn('int')
  version: number;

  @Column('jsonb')
  steps: FlowStep[];

  @Column('jsonb')
  trigger: FlowTrigger;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;
}

/** A row of `flow_runs`: one run of one version of a flow. */
@Entity('flow_runs')
@Index('flow_runs_dedupe_key', ['flowId', 'dedupeKey'], { unique: true })
@Index('flow_runs_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('flow_runs_flow_idx', ['flowId'])
@Index('flow_runs_unfinished_idx', ['status', 'updatedAt'], {
  where: `status IN ('queued', 'running', 'waiting')`,
})
export class FlowRunEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('uuid', { name: 'flow_id' })
  flowId: string;

  @Column('int')
  version: number;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text')
  status: FlowRunStatus;

  @Column('jsonb', { nullable: true })
  trigger: unknown;

  @Column('text')
  source: RunSource;

  @Column('text', { name: 'dedupe_key', nullable: true })
  dedupeKey: string | null;

  /** The step whose job runs (or waits) now; the last one run once the run is over. */
  @Column('text', { name: 'current_step', nullable: true })
  currentStep: string | null;

  /** Bumped by a retry: step job ids carry it, so a retried step gets a job of its own. */
  @Column('int')
  round: number;

  @Column('jsonb', { nullable: true })
  error: FlowError | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'started_at', nullable: true })
  startedAt: Date | null;

  @Column('timestamptz', { name: 'finished_at', nullable: true })
  finishedAt: Date | null;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt: Date;
}

/** A row of `flow_steps`: a step of a run, once the run has reached it. */
@Entity('flow_steps')
export class FlowStepEntity {
  @PrimaryColumn('uuid', { name: 'run_id' })
  runId: string;

  @PrimaryColumn('text', { name: 'step_id' })
  stepId: string;

  @Column('text')
  kind: string;

  @Column('text')
  status: FlowStepStatus;

  @Column('int')
  attempts: number;

  @Column('jsonb', { nullable: true })
  output: unknown;

  @Column('jsonb', { nullable: true })
  response: unknown;

  @Column('jsonb', { nullable: true })
  error: FlowError | null;

  /** What the step's executor keeps between its visits (a task id, a wake time). */
  @Column('jsonb', { nullable: true })
  state: Record<string, unknown> | null;

  @Column('uuid', { name: 'task_id', nullable: true })
  taskId: string | null;

  @Column('timestamptz', { name: 'wake_at', nullable: true })
  wakeAt: Date | null;

  @Column('timestamptz', { name: 'started_at', nullable: true })
  startedAt: Date | null;

  @Column('timestamptz', { name: 'finished_at', nullable: true })
  finishedAt: Date | null;
}
