import { TaskEventType } from '../tasks/task.enums';
import type { TaskEntity } from '../tasks/entities/task.entity';

/** One lifecycle event of a task; `sequence` rises by one per event of that task. */
export interface TaskEvent {
  type: TaskEventType;
  taskId: string;
  userId: string;
  sequence: number;
  timestamp: Date;
  /** The task as the transition left it. */
  task: TaskEntity;
}
