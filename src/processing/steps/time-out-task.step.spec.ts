import { fake, taskRow } from '../../../test/support/processing-fakes';
import { TaskStateMachine } from '../../tasks/task-state-machine';
import { TaskStatus } from '../../tasks/task.enums';
import { TasksService } from '../../tasks/tasks.service';
import { TimeOutTask } from './time-out-task.step';

describe('TimeOutTask', () => {
  it('fails the task with its timeout and stops its provider job', async () => {
    const failed = taskRow({ status: TaskStatus.Failed });
    const stateMachine = { fail: jest.fn(async () => failed) };
    const service = { stop: jest.fn(async () => undefined) };
    const task = taskRow();
    await new TimeOutTask(fake<TaskStateMachine>(stateMachine), fake<TasksService>(service)).run(task, 90_000);
    expect(stateMachine.fail).toHaveBeenCalledWith(
      task.id,
      { code: 'timeout', message: 'the task ran longer than its timeout of 90 s' },
      { from: [TaskStatus.Queued, TaskStatus.Processing] },
    );
    expect(service.stop).toHaveBeenCalledWith(failed, TaskStatus.Processing);
  });

  it('stops nothing when the task had ended already', async () => {
    const service = { stop: jest.fn(async () => undefined) };
    const step = new TimeOutTask(fake<TaskStateMachine>({ fail: async () => null }), fake<TasksService>(service));
    await step.run(taskRow(), 90_000);
    expect(service.stop).not.toHaveBeenCalled();
  });
});
