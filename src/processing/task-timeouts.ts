import { DEFAULT_TASK_TIMEOUTS_S, TaskType } from '../tasks/task.enums';

/** Timeout per task type in ms: defaults overridden by TASK_TIMEOUTS; an unknown type name stops the boot. */
export function resolveTaskTimeouts(overrides: Record<string, number>): Record<TaskType, number> {
  const known = Object.values(TaskType) as string[];
  const unknown = Object.keys(overrides).filter((t) => !known.includes(t));
  if (unknown.length) {
    throw new Error(`TASK_TIMEOUTS names unknown task types: ${unknown.join(', ')} (known: ${known.join(', ')})`);
  }
  const result = {} as Record<TaskType, number>;
  for (const type of Object.values(TaskType)) result[type] = (overrides[type] ?? DEFAULT_TASK_TIMEOUTS_S[type]) * 1000;
  return result;
}
