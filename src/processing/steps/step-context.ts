import type { Job } from 'bullmq';
import type { ProviderContext } from '../../providers/provider.port';
import type { TaskEntity } from '../../tasks/entities/task.entity';
import type { TaskRun } from '../task-runs';

/** What every step of one run works with: the task's row as the run found it, and the run itself. */
export interface StepContext {
  task: TaskEntity;
  job: Job;
  run: TaskRun;
  /** What the provider is given (the task's input, the run's signal, the progress callback). */
  call: ProviderContext;
  /** The storage folder of the task's outputs. */
  prefix: string;
  /** The task type's timeout (ms). */
  timeoutMs: number;
  /** The task's key in the result cache; undefined when the cache is off or the task bypasses it. */
  cacheKey?: string;
}
