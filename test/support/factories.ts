import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { TaskEntity } from '../../src/tasks/entities/task.entity';
import { TaskPriority, TaskStatus, TaskType } from '../../src/tasks/task.enums';

/** Task rows written straight to Postgres, for states the API cannot produce on demand (a crash mid-submit). */
export const factory = {
  async task(dataSource: DataSource, overrides: Partial<TaskEntity> = {}): Promise<TaskEntity> {
    const now = new Date(Date.now() - 60_000);
    const task = Object.assign(new TaskEntity(), {
      id: randomUUID(),
      userId: 'alice',
      type: TaskType.SubtitleGeneration,
      status: TaskStatus.Queued,
      priority: TaskPriority.Medium,
      progress: 0,
      input: { text: 'Recovered after a crash. It still completes.', format: 'srt', timing_mode: 'auto' },
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
      eventSeq: 1,
      providerJob: null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      completedAt: null,
      ...overrides,
    });
    await dataSource.getRepository(TaskEntity).insert(task as never);
    return task;
  },
};
