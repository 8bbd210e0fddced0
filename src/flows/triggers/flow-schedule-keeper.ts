import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { QueueName } from '../../queue/queue.constants';
import { QueueGateway } from '../../queue/queue.gateway';
import { FlowSchedulesService } from './flow-schedules.service';
import { ScheduledFlowsRepository } from './scheduled-flows.repository';
import { scheduleProblems } from './schedule';

/** Scheduled flows re-asserted per pass, at most. */
const BATCH = 5000;
const FLOW_SCHEDULER = /^flow-(.+)$/;

/**
 * A job scheduler lives with the jobs, so a flushed or replaced Redis loses every flow's. As the reconciler does for
 * its own, each worker re-asserts them every RECONCILE_INTERVAL_MS (upserting an unchanged scheduler keeps its next
 * tick), and removes the schedulers of flows that no longer have a schedule (a delete whose removal was lost).
 */
@Injectable()
export class FlowScheduleKeeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('FlowSchedules');
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;

  constructor(
    private readonly config: AppConfig,
    private readonly schedules: FlowSchedulesService,
    private readonly flows: ScheduledFlowsRepository,
    private readonly queues: QueueGateway,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.runsWorkers) return;
    const run = () => {
      this.pass ??= this.reassert()
        .catch((err: Error) => this.logger.warn(`flow schedulers not re-asserted: ${err.message}`))
        .finally(() => (this.pass = undefined));
    };
    run();
    this.timer = setInterval(run, Math.max(this.config.reconcileIntervalMs, 1000)).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
  }

  /** One pass: every scheduled flow has its scheduler, no other flow has one. Answers what it did. */
  async reassert(): Promise<{ asserted: number; removed: number }> {
    const scheduled = await this.flows.findScheduled(BATCH);
    if (!scheduled) return { asserted: 0, removed: 0 };
    const keep = new Set<string>();
    let asserted = 0;
    for (const flow of scheduled) {
      if (scheduleProblems(flow.trigger).length) continue;
      keep.add(flow.id);
      await this.schedules.sync(flow.id, flow.trigger);
      asserted++;
    }
    // Schedulers of flows not in that list: removed only if their flow has no schedule when read after the listing,
    // so a flow made (or rescheduled) during this pass keeps the scheduler it just got.
    const listed = await this.queues.queue(QueueName.Flows).getJobSchedulers(0, -1);
    const others = listed
      .map((scheduler) => FLOW_SCHEDULER.exec(scheduler.key ?? '')?.[1])
      .filter((id): id is string => id !== undefined && !keep.has(id));
    const stillScheduled = await this.flows.scheduledAmong(others);
    let removed = 0;
    for (const id of others) {
      if (stillScheduled.has(id)) continue;
      await this.schedules.remove(id);
      removed++;
    }
    return { asserted, removed };
  }
}
