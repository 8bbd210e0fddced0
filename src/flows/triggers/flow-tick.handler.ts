import { Injectable, Logger } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { JobName } from '../../queue/queue.constants';
import { FlowRunStarter } from '../flow-ports';
import { FlowsRepository } from '../flows.repository';
import { nextTicksOf } from './schedule';

/** The most missed ticks a tick makes up for (a schedule stopped for longer runs only its last ones). */
export const MAX_MISSED_TICKS = 10;

/** What a tick started: the run, or nothing when its flow is gone. */
export interface TickResult {
  runId: string | null;
  created: boolean;
  scheduledAt: string;
}

/**
 * Turns one tick of a flow's job scheduler (JobName.FlowTick on the flows queue) into one run: source `schedule`,
 * trigger `{scheduled_at}`, dedupe key `tick:<the tick's ms>`, so a tick run twice (two workers after a stall, a
 * retry, a restart) still makes one run. The flows worker calls `handle` for FlowTick jobs.
 */
@Injectable()
export class FlowTickHandler {
  private readonly logger = new Logger('FlowTicks');

  constructor(
    private readonly runs: FlowRunStarter,
    private readonly flows: FlowsRepository,
  ) {}

  async handle(job: Job): Promise<TickResult> {
    if (job.name !== (JobName.FlowTick as string)) throw new UnrecoverableError(`not a flow tick: ${job.name}`);
    const flowId = (job.data as { flowId?: unknown } | null)?.flowId;
    if (typeof flowId !== 'string' || !flowId || flowId.length > 200)
      throw new UnrecoverableError(`invalid ${JobName.FlowTick} job data: ${JSON.stringify(job.data)}`);
    const tickMs = tickTimeOf(job);
    await this.makeUpMissed(flowId, tickMs);
    const scheduledAt = new Date(tickMs).toISOString();
    const started = await this.runs.start({
      flowId,
      trigger: { scheduled_at: scheduledAt },
      source: 'schedule',
      dedupeKey: `tick:${tickMs}`,
    });
    if (!started) {
      // Deleted (its scheduler is removed with it, but a tick may already have been waiting).
      this.logger.warn({ flowId }, 'tick of a flow that no longer exists: no run');
      return { runId: null, created: false, scheduledAt };
    }
    return { runId: started.runId, created: started.created, scheduledAt };
  }

  /**
   * BullMQ skips the ticks a scheduler missed (a tick run late: a busy or restarting worker) and goes on from now.
   * The runs of those ticks are made here, before this tick's, up to MAX_MISSED_TICKS, from the flow's last tick
   * while its schedule has not changed since. A tick off the schedule's grid (an `every` schedule BullMQ went on with
   * from "now") is the late one of the grid point before it: that point is not made up as well, or one period would
   * get two runs.
   */
  private async makeUpMissed(flowId: string, tickMs: number): Promise<void> {
    const flow = await this.flows.findFlowForRun(flowId);
    if (!flow || flow.trigger.type !== 'schedule') return;
    const last = await this.flows.lastTickBefore(flowId, tickMs);
    if (last === null || last < flow.updatedAt.getTime()) return;
    const grid = nextTicksOf(flow.trigger, MAX_MISSED_TICKS + 1, last);
    const before = grid.filter((at) => Date.parse(at) < tickMs);
    const onGrid = grid.some((at) => Date.parse(at) === tickMs) || before.length === grid.length;
    const missed = (onGrid ? before : before.slice(0, -1)).slice(0, MAX_MISSED_TICKS);
    for (const at of missed) {
      await this.runs.start({
        flowId,
        trigger: { scheduled_at: at },
        source: 'schedule',
        dedupeKey: `tick:${Date.parse(at)}`,
      });
    }
    if (missed.length) this.logger.warn({ flowId, missed: missed.length }, 'made up the runs of missed ticks');
  }
}

/**
 * The time a tick was scheduled for: BullMQ keeps it as `prevMillis` and in the job id (`repeat:<scheduler>:<ms>`);
 * the job's own timestamp is when it was added, which differs between the processes that could add it.
 */
export function tickTimeOf(job: Pick<Job, 'id' | 'opts' | 'timestamp'>): number {
  const prev = (job.opts as { prevMillis?: unknown }).prevMillis;
  if (typeof prev === 'number' && Number.isFinite(prev)) return prev;
  const fromId = /^repeat:[^:]+:(\d+)$/.exec(job.id ?? '');
  if (fromId) return Number(fromId[1]);
  return job.timestamp;
}
