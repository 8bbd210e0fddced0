import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A row of `batches` (POST /batch): its tasks are rows of `tasks` with this `batch_id`. `completed_at` is set once,
 * by the statement that also writes the batch.completed delivery (BatchesRepository.closeIfFinished).
 */
@Entity('batches')
@Index('batches_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('batches_created_idx', ['createdAt', 'id'])
export class BatchEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text', { name: 'user_id' })
  userId: string;

  @Column('text', { name: 'webhook_url', nullable: true })
  webhookUrl: string | null;

  /** Write-only: signs batch.completed, never returned or logged. */
  @Column('text', { name: 'webhook_secret', nullable: true, select: false })
  webhookSecret?: string | null;

  @Column('jsonb', { nullable: true })
  metadata: Record<string, unknown> | null;

  @Column('int')
  total: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'completed_at', nullable: true })
  completedAt: Date | null;
}
