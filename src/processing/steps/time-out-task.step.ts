import { Injectable } from '@nestjs/common';
import { TaskEntity, TaskError } from '../../tasks/entities/task.entity';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskErrorCode, TaskStatus } from '../../tasks/task.enums';
import { TasksService } from '../../tasks/tasks.service';

export function timeoutError(ms: number): TaskError {
  return { code: TaskErrorCode.Timeout, message: `the task ran longer than its timeout of ${Math.round(ms / 1000)} s` };
}

/** Past the type's timeout: fail the task, and stop its provider job if one runs (it would bill for nothing). */
@Injectable()
export class TimeOutTask {
  constructor(
    private readonly stateMachine: TaskStateMachine,
    private readonly service: TasksService,
  ) {}

  async run(task: TaskEntity, timeoutMs: number): Promise<void> {
    const failed = await this.stateMachine.fail(task.id, timeoutError(timeoutMs), {
      from: [TaskStatus.Queued, TaskStatus.Processing],
    });
    if (failed) await this.service.stop(failed, TaskStatus.Processing);
  }
}
