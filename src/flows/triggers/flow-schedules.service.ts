import { Injectable } from '@nestjs/common';
import { FlowSchedules, FlowTrigger } from '../flow-ports';
import { JobName, QueueName } from '../../queue/queue.constants';
import { QueueGateway } from '../../queue/queue.gateway';
import { nextTicksOf, repeatOf, scheduleProblems } from './schedule';

/** Tick jobs kept after they end, per scheduled flow (BullMQ removes older ones). */
const TICKS_KEPT = 20;

/**
 * The BullMQ job scheduler of a scheduled flow. Its id holds no colon: BullMQ names each tick's job
 * `repeat:<scheduler id>:<tick ms>` and refuses job ids with a number of colons other than two.
 */
export function flowSchedulerId(flowId: string): string {
  return `flow-${flowId}`;
}

/**
 * Keeps each scheduled flow's job scheduler on the flows queue in step with its trigger: one scheduler per flow,
 * whatever the number of processes (BullMQ makes one job per tick per scheduler), each tick a JobName.FlowTick job
 * with `{flowId}` that FlowTickHandler turns into a run.
 */
@Injectable()
export class FlowSchedulesService extends FlowSchedules {
  constructor(private readonly queues: QueueGateway) {
    super();
  }

  problems(trigger: FlowTrigger): string[] {
    return scheduleProblems(trigger);
  }

  async sync(flowId: string, trigger: FlowTrigger | null): Promise<void> {
    if (!trigger || trigger.type !== 'schedule' || scheduleProblems(trigger).length) {
      await this.remove(flowId);
      return;
    }
    await this.queues.queue(QueueName.Flows).upsertJobScheduler(flowSchedulerId(flowId), repeatOf(trigger), {
      name: JobName.FlowTick,
      data: { flowId },
      opts: { removeOnComplete: TICKS_KEPT, removeOnFail: TICKS_KEPT },
    });
  }

  async remove(flowId: string): Promise<void> {
    await this.queues.queue(QueueName.Flows).removeJobScheduler(flowSchedulerId(flowId));
  }

  nextTicks(trigger: FlowTrigger, count: number): string[] {
    return nextTicksOf(trigger, count);
  }
}
