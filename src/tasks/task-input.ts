import { COMMON_FIELDS } from './dto/task-create-base.dto';
import type { TaskDtoOf } from './dto/task-dto-by-type';
import { BEST_MODEL } from './dto/validators';
import { TaskType } from './task.enums';

/**
 * The input of a task of type `T`, as stored and as its provider receives it: the fields of its create DTO without
 * the ones every create endpoint shares (COMMON_FIELDS). `model: "best"` pins nothing and is dropped at submit, so a
 * stored `model` is always a real one. Fields with a DTO default may still be absent (adapters called directly, rows
 * written before the default existed): adapters apply the same defaults.
 */
export type TaskInputOf<T extends TaskType> = T extends TaskType
  ? Omit<TaskDtoOf<T>, (typeof COMMON_FIELDS)[number] | 'model'> & {
      model?: Exclude<TaskDtoOf<T>['model'], typeof BEST_MODEL>;
    }
  : never;

/** The input of any task type (a union: one shape per type). */
export type TaskInput = TaskInputOf<TaskType>;

/**
 * A task's type with the input of that type. For several types it is a union of one pair per type, so a
 * `switch (task.type)` narrows `task.input` to that type's fields.
 */
export type TaskRequest<T extends TaskType = TaskType> = T extends TaskType
  ? { type: T; input: TaskInputOf<T> }
  : never;

/**
 * The typed request of a task whose input has passed its type's DTO: at submit (TasksService keeps the DTO's own
 * fields) and ever after, as the stored JSON of that input. The type and the input travel apart (the create
 * endpoint's path, the task row's untyped JSON column), so this is the one place that joins them again.
 */
export function taskRequestOf(task: { type: TaskType; input: Record<string, unknown> }): TaskRequest {
  return { type: task.type, input: task.input } as TaskRequest;
}
