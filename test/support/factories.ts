import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { TaskEntity } from '../../src/tasks/entities/task.entity';
import { TaskType } from '../../src/tasks/task.enums';

/** Task rows written straight to Postgres, for states the API cannot produce on demand (a crash mid-submit). */
export const factory = {
  async task(dataSource: DataSource, overrides: Partial<TaskEntity> = {}): Promise<TaskEntity> {
    const task = TaskEntity.create({
      id: randomUUID(),
      userId: 'alice',
      type: TaskType.SubtitleGeneration,
      input: { text: 'Recovered after a crash. It still completes.', format: 'srt', timing_mode: 'auto' },
      createdAt: new Date(Date.now() - 60_000),
      ...overrides,
    });
    await dataSource.getRepository(TaskEntity).insert(task as never);
    return task;
  },
};
